/// A bounded least-recently-used cache (dictionary + intrusive doubly linked list over array slots; O(1) per
/// operation, no allocation once full).
public struct LRUCache<Key: Hashable, Value> {
    private struct Node {
        var key: Key
        var value: Value
        var prev: Int
        var next: Int
    }

    public let capacity: Int
    private var slots: [Key: Int] = [:]
    private var nodes: [Node] = []
    private var head = -1  // most recent
    private var tail = -1  // least recent

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
    }

    public var count: Int { slots.count }

    /// The cached value, marking it most recently used.
    public mutating func value(for key: Key) -> Value? {
        guard let i = slots[key] else { return nil }
        moveToFront(i)
        return nodes[i].value
    }

    /// Inserts or replaces a value, evicting the least recently used entry when full.
    public mutating func set(_ value: Value, for key: Key) {
        if let i = slots[key] {
            nodes[i].value = value
            moveToFront(i)
            return
        }
        let i: Int
        if nodes.count < capacity {
            nodes.append(Node(key: key, value: value, prev: -1, next: -1))
            i = nodes.count - 1
        } else {
            i = tail
            unlink(i)
            slots[nodes[i].key] = nil
            nodes[i] = Node(key: key, value: value, prev: -1, next: -1)
        }
        slots[key] = i
        pushFront(i)
    }

    private mutating func unlink(_ i: Int) {
        let (p, n) = (nodes[i].prev, nodes[i].next)
        if p >= 0 { nodes[p].next = n } else { head = n }
        if n >= 0 { nodes[n].prev = p } else { tail = p }
    }

    private mutating func pushFront(_ i: Int) {
        nodes[i].prev = -1
        nodes[i].next = head
        if head >= 0 { nodes[head].prev = i }
        head = i
        if tail < 0 { tail = i }
    }

    private mutating func moveToFront(_ i: Int) {
        guard head != i else { return }
        unlink(i)
        pushFront(i)
    }
}
