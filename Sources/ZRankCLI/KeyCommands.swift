import ArgumentParser
import CLISupport
import Foundation
import Protocol

extension ZRank {
    /// `zrank keygen --out PREFIX`: a CURVE key pair for a router, worker, client or operator.
    struct Keygen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a CURVE key pair: PREFIX.key (the secret, mode 0600) and PREFIX.pub (the public key, Z85).",
            discussion: """
                Give a server (zrank serve/router/coordinator) its PREFIX.key with --curve-key; put each client's, \
                worker's and operator's PREFIX.pub in the folder the server admits them from (--curve-clients, \
                --curve-workers, --curve-admins); give those programs the server's PREFIX.pub with --curve-server and \
                their own PREFIX.key with --curve-key. Existing files are never overwritten.
                """)

        @Option(name: .long, help: "Path prefix of the two files to write.")
        var out: String

        func run() throws {
            do {
                let pair = try CurveKeyPair.generate()
                try pair.write(prefix: out)
                print("\(out).key (secret, 0600)\n\(out).pub \(pair.publicKey.z85)")
            } catch {
                throw CLIFailure("zrank keygen: \(error)")
            }
        }
    }

    /// `zrank health --endpoint E [--ready]`: a probe for process supervisors (Kubernetes exec probes).
    struct Health: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Probe a router: exit 0 when it answers (with --ready: when a worker answered an info request).",
            discussion: """
                Exit status: 0 healthy, 1 the router answered but is not ready (--ready: no worker, or draining), \
                2 no answer in time (the message names a refused CURVE key or a mechanism mismatch when that is why).
                """)

        @Option(name: .long, help: "The router's client endpoint (tcp:// or ipc://).")
        var endpoint: String

        @OptionGroup var curve: CurveClientOptions

        @Flag(name: .long, help: "Also require a worker to answer (readiness), not just the router (liveness).")
        var ready = false

        @Option(name: .long, help: "Time to wait for the answer, e.g. 500ms, 2s.")
        var timeout: DurationArgument = DurationArgument(argument: "2s")!

        func validate() throws {
            try validateEndpoint(endpoint, "--endpoint")
        }

        func run() throws {
            let client = try PoolClient(endpoint: endpoint, curve: try curve.keys())
            let id: UInt64 = 1
            // Half the wait as the request's deadline: a router with no worker answers DEADLINE_EXCEEDED (it is alive)
            // well before this probe gives up.
            try client.send(type: .infoRequest, requestID: id, body: [], deadlineMs: UInt32(max(1, timeout.milliseconds / 2)))
            let deadline = monotonicNanos() + UInt64(timeout.milliseconds) * 1_000_000
            while monotonicNanos() < deadline {
                guard let answer = try client.receive(timeoutMs: 20), answer.header.requestID == id else { continue }
                if answer.header.type == .infoResponse {
                    let info = try Zrank_V1_InfoResponse(serializedBytes: answer.body)
                    print("ok: \(endpoint) answered; a worker serves \(info.modelVersion) (\(info.catalogSize) items)")
                    return
                }
                let error = (try? Zrank_V1_Error(serializedBytes: answer.body)) ?? Zrank_V1_Error()
                if !ready {
                    print("ok: \(endpoint) answered (\(error.code.name): \(error.message))")
                    return
                }
                FileHandle.standardError.write(Data("zrank health: \(endpoint) is up but not ready: \(error.code.name): \(error.message)\n".utf8))
                throw ExitCode(1)
            }
            let why = client.handshakeProblem ?? "the router is down or unreachable"
            FileHandle.standardError.write(Data("zrank health: no answer from \(endpoint) within \(timeout): \(why)\n".utf8))
            throw ExitCode(2)
        }
    }
}
