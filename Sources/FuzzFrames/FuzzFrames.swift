import Foundation
import FuzzSupport
import Protocol
import Router
import SwiftProtobuf

// The router's wire handling: the 24-byte header codec and the pin frame (`FrameHeader(decoding:)`), then whole
// multipart messages through `RouterCore`'s real event handling (no sockets: it is a state machine returning
// actions), driven by a script of events read from the input. Format (fuzz/README.md), repeated to the end:
//
//   kind u8, then by kind % 7:
//   0 client message   n u8 (% 6 frames), n x frame          -> clientMessage(frames)   (frames[0]: the envelope)
//   1 worker message   who u8 (% 4: identity "w0".."w3"), n u8 (% 4 frames), n x frame
//                                                             -> workerMessage([identity] + frames)
//   2 worker answer    pick u8, header frame, has-body u8 (odd: yes), [body frame]
//                      -> workerMessage([identity, header, body?]) as the worker the pick-th dispatched request went
//                         to, with the header's request id (bytes 8-15) replaced by that request's ticket (tickets
//                         are random per router, so a script could not name one otherwise)
//   3 tick             ms u16                                 -> tick(now + ms)
//   4 control          body frame                             -> ControlHandler.handle(body) (the admin socket)
//   5 drain                                                   -> beginDrain()
//   6 compare                                                 -> the shadow pairs so far through a ShadowComparator
//   frame: u16 little-endian length, then the bytes (fewer at the end of the input).
//
// Every frame also goes through `FrameHeader(decoding:)`, and a header that decodes must re-encode to the same 24
// bytes. At the end the router abandons everything: it must then hold no request.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    var script = ByteReader(inputBytes(data, size))
    var configuration = RouterConfiguration()
    configuration.queueBound = 64
    configuration.queueBytes = 1 << 20
    configuration.maxBodyBytes = 64 << 10
    var core = RouterCore(configuration: configuration)
    var now: UInt64 = 1_000_000_000_000
    var dispatched: [(identity: [UInt8], ticket: UInt64)] = []
    var pairs: [ShadowPair] = []
    let comparator = ShadowComparator()

    func take(_ actions: [RouterAction]) {
        for action in actions {
            switch action {
            case .toWorker(let frames):
                precondition(frames.count >= 2, "a message to a worker without a header")
                if let header = checkedHeader(frames[1]), header.type == .rankRequest || header.type == .infoRequest {
                    dispatched.append((frames[0], header.requestID))
                    if dispatched.count > 256 { dispatched.removeFirst(128) }
                }
            case .toClient(let frames):
                precondition(frames.count >= 2, "a message to a client without a header")
            case .compare(let pair):
                pairs.append(pair)
            }
        }
    }

    while !script.isAtEnd {
        now += 1000
        switch script.u8() % 7 {
        case 0:
            let frames = (0..<Int(script.u8() % 6)).map { _ in script.frame() }
            for f in frames { _ = checkedHeader(f) }
            take(core.clientMessage(frames, now: now))
        case 1:
            let identity = Array("w\(script.u8() % 4)".utf8)
            let frames = (0..<Int(script.u8() % 4)).map { _ in script.frame() }
            for f in frames { _ = checkedHeader(f) }
            take(core.workerMessage([identity] + frames, now: now))
        case 2:
            let pick = Int(script.u8())
            var header = script.frame()
            let body = script.u8() % 2 == 1 ? [script.frame()] : []
            guard !dispatched.isEmpty else { continue }
            let (identity, ticket) = dispatched[pick % dispatched.count]
            if header.count == FrameHeader.size {
                withUnsafeBytes(of: ticket.littleEndian) { header.replaceSubrange(8..<16, with: $0) }
            }
            _ = checkedHeader(header)
            take(core.workerMessage([identity, header] + body, now: now))
        case 3:
            now += UInt64(script.u16()) * 1_000_000
            take(core.tick(now: now))
        case 4:
            let body = script.frame()
            let outcome = ControlHandler.handle(body, core: &core, agreement: comparator.figures, metricsText: { "" })
            if let generation = outcome.shadowGeneration { comparator.reset(generation: generation) }
            take(outcome.actions)
        case 5:
            core.beginDrain()
        default:
            for pair in pairs { comparator.compare(pair) }
            pairs.removeAll()
        }
    }
    _ = AdminJSON.encode(ControlHandler.status(core, shadow: comparator.figures))
    _ = core.takeCompletions()
    take(core.abandonAll())
    precondition(core.isIdle && core.queueDepth == 0 && core.inFlight == 0, "requests held after abandonAll")
    return 0
}

/// Decodes a frame as a header; one that decodes must re-encode to the same bytes.
private func checkedHeader(_ frame: [UInt8]) -> FrameHeader? {
    do {
        let header = try FrameHeader(decoding: frame)
        precondition(header.bytes == frame, "header does not re-encode to its bytes")
        precondition(try! FrameHeader(decoding: header.bytes) == header, "header does not decode from its bytes")
        return header
    } catch {
        _ = error.description
        _ = error.requestID
        return nil
    }
}
