import DequeModule
import Protocol

/// The requests the router holds, from receipt to answer, and the queue of those waiting for a worker.
///
/// Ticket ids start at a random value in each router process, so an answer a worker still owes a dead router can
/// never match a ticket of its successor.
package struct TicketBook {
    /// One request.
    package struct Ticket: Equatable {
        /// Client identity (+ the empty delimiter for REQ clients).
        package var envelope: [[UInt8]]
        package var clientRequestID: UInt64
        package var type: MessageType
        package var pin: String?
        package var body: [UInt8]
        package var receivedAt: UInt64
        package var deadline: UInt64
        /// Times sent to a worker.
        package var attempts = 0
        /// The worker that has it (nil: queued).
        package var worker: [UInt8]?
        package var dispatchedAt: UInt64 = 0

        package init(
            envelope: [[UInt8]], clientRequestID: UInt64, type: MessageType, pin: String?, body: [UInt8], receivedAt: UInt64,
            deadline: UInt64
        ) {
            self.envelope = envelope
            self.clientRequestID = clientRequestID
            self.type = type
            self.pin = pin
            self.body = body
            self.receivedAt = receivedAt
            self.deadline = deadline
        }
    }

    package private(set) var tickets: [UInt64: Ticket] = [:]
    /// Bytes of the bodies held (queued and in flight): what `--queue-bytes` bounds.
    package private(set) var heldBytes = 0
    /// Waiting for a worker, oldest first.
    package private(set) var queue = Deque<UInt64>()
    private var next: UInt64

    package init(firstID: UInt64 = UInt64.random(in: 1...(1 << 48))) { next = firstID }

    package var isEmpty: Bool { tickets.isEmpty }
    package var queueDepth: Int { queue.count }
    package var inFlight: Int { tickets.count - queue.count }
    package subscript(id: UInt64) -> Ticket? { tickets[id] }

    /// A fresh id (tickets and shadow copies share the sequence).
    package mutating func newID() -> UInt64 {
        defer { next &+= 1 }
        return next
    }

    /// Holds a new request at the back of the queue; returns its id.
    package mutating func open(_ ticket: Ticket) -> UInt64 {
        let id = newID()
        tickets[id] = ticket
        heldBytes += ticket.body.count
        queue.append(id)
        return id
    }

    /// Forgets a request (answered, expired or failed).
    @discardableResult
    package mutating func close(_ id: UInt64) -> Ticket? {
        guard let t = tickets.removeValue(forKey: id) else { return nil }
        heldBytes -= t.body.count
        return t
    }

    /// Puts an in-flight request back at the front of the queue (its worker died).
    package mutating func requeueFront(_ id: UInt64) {
        guard tickets[id] != nil else { return }
        tickets[id]!.worker = nil
        queue.prepend(id)
    }

    /// Marks the queued request at `position` sent to `worker`.
    package mutating func dispatch(at position: Int, to worker: [UInt8], now: UInt64) -> (id: UInt64, ticket: Ticket) {
        let id = queue.remove(at: position)
        tickets[id]!.worker = worker
        tickets[id]!.attempts += 1
        tickets[id]!.dispatchedAt = now
        return (id, tickets[id]!)
    }

    /// Drops the queue entry at `position` (its ticket is closed or gone).
    package mutating func dropQueued(at position: Int) { queue.remove(at: position) }

    /// Closes every request whose deadline has passed, queued or in flight; returns them.
    package mutating func expire(now: UInt64) -> [Ticket] {
        let expired = tickets.filter { $0.value.deadline <= now }
        guard !expired.isEmpty else { return [] }
        for id in expired.keys { close(id) }
        if expired.values.contains(where: { $0.worker == nil }) { queue = Deque(queue.filter { tickets[$0] != nil }) }
        return expired.sorted { $0.key < $1.key }.map(\.value)
    }

    /// Closes everything; returns what was held.
    package mutating func closeAll() -> [Ticket] {
        defer {
            tickets.removeAll()
            queue.removeAll()
            heldBytes = 0
        }
        return Array(tickets.values)
    }
}
