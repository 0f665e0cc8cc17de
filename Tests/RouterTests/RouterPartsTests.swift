import Protocol
import Router
import XCTest

/// The small machines `RouterCore` is composed of, each on its own.
final class RouterPartsTests: XCTestCase {
    private let a: [UInt8] = Array("w1-a".utf8)
    private let b: [UInt8] = Array("w2-b".utf8)

    func testWorkerTable_phases_lru_namesAndCapacityCap() {
        var t = WorkerTable()
        XCTAssertEqual(t.announce(a, name: "w1", version: "v1", capacity: 1 << 30, now: 1), .joined(replacing: nil))
        XCTAssertEqual(t[a]?.capacity, WorkerTable.maxCapacity, "an announced capacity is capped")
        XCTAssertEqual(t.announce(b, name: "w2", version: "v1", capacity: 1, now: 1), .joined(replacing: nil))
        XCTAssertEqual(t.firstFree().map { t.lru[$0] }, a, "least recently used first")
        XCTAssertEqual(t.assign(7, at: t.firstFree()!), a)
        XCTAssertEqual(Array(t.lru), [b, a])
        // A drained worker takes nothing new; off again, it does.
        t.setDraining(b, true)
        XCTAssertEqual(t[b]?.phase.state, .draining)
        XCTAssertEqual(t.firstFree { $0.version == "v1" }.map { t.lru[$0] }, a)
        t.setDraining(b, false)
        XCTAssertEqual(t[b]?.phase, .ready)
        // A load waits for the worker's requests, then goes out; warming comes from its heartbeat; READY ends it.
        t.orderLoad(a, body: Array("{}".utf8))
        XCTAssertEqual(t[a]?.phase.state, .draining)
        XCTAssertNil(t.takeLoadIfDrained(a), "request 7 still in flight")
        XCTAssertTrue(t.release(7, from: a))
        XCTAssertEqual(t.takeLoadIfDrained(a), Array("{}".utf8))
        XCTAssertEqual(t[a]?.phase, .loading)
        let oldCache = QueryCacheFigures(hits: 5, misses: 2, entries: 2, bytes: 3_072)
        XCTAssertTrue(t.heard(a, warming: true, queryCache: oldCache, now: 2))
        XCTAssertEqual(t[a]?.phase, .warming)
        XCTAssertEqual(t[a]?.loads, 0)
        XCTAssertEqual(t.announce(a, name: "w1", version: "v2", capacity: 1, now: 3), .refreshed)
        XCTAssertEqual(t[a]?.phase, .ready)
        XCTAssertEqual(t[a]?.version, "v2")
        // The new version's cache figures start again: the old ones are gone, and the load is counted so that
        // readers of the figures (the metrics) know they restarted.
        XCTAssertNil(t[a]?.queryCache)
        XCTAssertEqual(t[a]?.loads, 1)
        XCTAssertEqual(t.announce(a, name: "w1", version: "v2", capacity: 1, now: 3), .refreshed)
        XCTAssertEqual(t[a]?.loads, 1, "a READY outside a load is no load")
        // A reconnect under the same name replaces the old entry; names resolve to the live identity.
        let a2: [UInt8] = Array("w1-c".utf8)
        XCTAssertEqual(t.announce(a2, name: "w1", version: "v2", capacity: 1, now: 4), .joined(replacing: a))
        XCTAssertNotNil(t.remove(a))
        XCTAssertEqual(t.identity(named: "w1"), a2)
        XCTAssertEqual(t.identity(named: "w2-b"), b, "a socket identity is accepted too")
        XCTAssertFalse(t.heard(a, warming: false, now: 5), "the old identity is unknown now")
        XCTAssertEqual(t.silent(now: 4_000_000_000, limit: 3_000_000_000).sorted { $0.lexicographicallyPrecedes($1) }, [a2, b].sorted { $0.lexicographicallyPrecedes($1) })
    }

    func testTicketBook_heldBytes_requeue_expiry() {
        var book = TicketBook(firstID: 100)
        func ticket(_ bytes: Int, deadline: UInt64) -> TicketBook.Ticket {
            TicketBook.Ticket(envelope: [[1]], clientRequestID: 1, type: .rankRequest, pin: nil, body: [UInt8](repeating: 0, count: bytes), receivedAt: 0, deadline: deadline)
        }
        XCTAssertEqual(book.open(ticket(10, deadline: 50)), 100)
        XCTAssertEqual(book.open(ticket(20, deadline: 500)), 101)
        XCTAssertEqual(book.heldBytes, 30)
        let (id, sent) = book.dispatch(at: 0, to: a, now: 5)
        XCTAssertEqual(id, 100)
        XCTAssertEqual(sent.attempts, 1)
        XCTAssertEqual(book.inFlight, 1)
        book.requeueFront(100)
        XCTAssertEqual(Array(book.queue), [100, 101], "back at the front")
        XCTAssertEqual(book.expire(now: 60).map(\.body.count), [10])
        XCTAssertEqual(Array(book.queue), [101])
        XCTAssertEqual(book.heldBytes, 20)
        XCTAssertEqual(book.newID(), 102, "shadow copies share the sequence")
        XCTAssertEqual(book.closeAll().count, 1)
        XCTAssertEqual(book.heldBytes, 0)
        XCTAssertTrue(book.isEmpty)
        var first = TicketBook()
        var second = TicketBook()
        XCTAssertNotEqual(first.newID(), second.newID(), "each router process starts at a random id")
    }

    func testTrafficSplitter_keepsSharesByDeficit() {
        var s = TrafficSplitter()
        s.set(["v1": 3, "v2": 1, "v3": 0])
        XCTAssertEqual(s.shares, ["v1": 0.75, "v2": 0.25])
        var counts: [String: Int] = [:]
        let lru = ["v1", "v2", "v3"]  // one free worker per version, in LRU order
        for _ in 0..<400 {
            let pick = s.pick(firstFree: { lru.firstIndex(of: $0) })!
            let version = lru[pick]
            counts[version, default: 0] += 1
            s.record(version)
        }
        XCTAssertEqual(counts, ["v1": 300, "v2": 100])
        XCTAssertNil(s.pick(firstFree: { $0 == "v3" ? 0 : nil }), "a version outside the split is not picked")
        // Equal deficits: the earlier LRU position wins, whichever version it holds.
        var even = TrafficSplitter()
        even.set(["a": 1, "b": 1])
        XCTAssertEqual(even.pick(firstFree: { $0 == "a" ? 5 : 2 }), 2)
        XCTAssertEqual(even.pick(firstFree: { $0 == "a" ? 1 : 4 }), 1)
        s.set([:])
        XCTAssertTrue(s.isEmpty)
    }
}
