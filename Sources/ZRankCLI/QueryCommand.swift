import ArgumentParser
import CLISupport
import Foundation
import Protocol
import SwiftProtobuf

/// One request of `zrank query`.
struct QueryRequest {
    var idJSON: String
    var query: String
    var candidates: [String]
    var inputError: String?
}

extension ZRank {
    /// `zrank query --endpoint E (--text ... | --batch FILE) ...` — the command-line client.
    struct Query: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rank candidates for a query (or a file of queries) against a running pool.",
            discussion: """
                Exit status: 0 when every request was ranked, 1 when any got an error reply, 2 when the pool was \
                unreachable or a request timed out.
                """)

        @Option(name: .long, help: "The pool's client endpoint (tcp:// or ipc://); several routers' endpoints separated by commas fail over to each other.")
        var endpoint: String

        @OptionGroup var curve: CurveClientOptions

        @Option(name: .long, help: "With several endpoints: how long one try may go unanswered before the request goes to another router.")
        var tryTimeout: DurationArgument = DurationArgument(argument: "500ms")!

        @Option(name: .long, help: "Query text (one request).")
        var text: String?

        @Option(name: .long, help: "Id echoed in the answer (with --text).")
        var id: String?

        @Option(name: .long, help: "Comma-separated candidate item ids (default: the whole catalog).")
        var candidates: String?

        @Option(name: .long, help: "File of candidate ids, one per line.")
        var candidatesFile: String?

        @Option(name: .long, help: "JSON lines {\"id\", \"query\", \"candidates\"?}; one answer line per input line, in order.")
        var batch: String?

        // Unconditional: `--top-k -1` reaches validation (a clear range message) instead of reading as a flag.
        @Option(name: .long, parsing: .unconditional, help: "Items to return (default: all candidates, 10 for the whole catalog).")
        var topK: Int?

        @Option(name: .long, help: "Time to wait for each answer, e.g. 500ms, 5s.")
        var timeout: DurationArgument = DurationArgument(argument: "5s")!

        @Option(name: .long, help: "Requests outstanding at once with --batch.")
        var inFlight: Int = 8

        @Option(name: .long, help: "Pin requests to this model version.")
        var pin: String?

        @Flag(name: .long, help: "Ask for each item's score components (with heads: ctr, engagement, each feature's contributions).")
        var explain = false

        @Option(name: .long, help: "User id sent in the user context.")
        var user: String?

        @Option(name: .long, help: "Comma-separated recent item ids of the user, most recent first (personalisation with heads).")
        var recent: String?

        @Option(name: .long, help: "Override the heads' alpha in score = alpha * ctr + beta * engagement.")
        var alpha: Float?

        @Option(name: .long, help: "Override the heads' beta.")
        var beta: Float?

        @Flag(name: .long, help: "One JSON object per request instead of a table.")
        var json = false

        func validate() throws {
            try validateEndpoints(endpoint, "--endpoint")
            guard (text != nil) != (batch != nil) else { throw ValidationError("give exactly one of --text and --batch") }
            if candidates != nil && candidatesFile != nil {
                throw ValidationError("give at most one of --candidates and --candidates-file")
            }
            if batch != nil && (candidates != nil || candidatesFile != nil || id != nil) {
                throw ValidationError("--batch lines carry their own ids and candidates")
            }
            guard (1...10_000).contains(inFlight) else {
                throw ValidationError("--in-flight must be between 1 and 10000 (got \(inFlight))")
            }
            if let topK, !(0...Int(UInt32.max)).contains(topK) {
                throw ValidationError("--top-k must be between 0 (all) and \(UInt32.max) (got \(topK))")
            }
        }

        func run() throws {
            let requests = try loadRequests()
            let client: PoolClient
            do {
                client = try PoolClient(endpoint: endpoint, curve: try curve.keys(), tryTimeoutMs: tryTimeout.milliseconds)
            } catch {
                throw CLIFailure("zrank query: cannot connect to \(endpoint): \(error)")
            }
            var results = [String?](repeating: nil, count: requests.count)
            var tables = [String?](repeating: nil, count: requests.count)
            var sentAt = [UInt64](repeating: 0, count: requests.count)
            var attempts = [Int](repeating: 0, count: requests.count)
            var retryAt: [Int: UInt64] = [:]
            var anyError = false
            var timedOut = false
            var next = 0
            var outstanding = Set<Int>()
            var flushed = 0
            var out = LineWriter()
            let timeoutNs = UInt64(timeout.milliseconds) * 1_000_000

            func send(_ i: Int) throws {
                var r = Zrank_V1_RankRequest()
                r.query = requests[i].query
                r.candidateIds = requests[i].candidates
                r.topK = UInt32(topK ?? 0)
                r.explain = explain
                if let user { r.user.userID = user }
                if let recent { r.user.recentItemIds = recent.split(separator: ",").map { String($0.trimmingCharacters(in: .whitespaces)) } }
                if let alpha { r.alpha = alpha }
                if let beta { r.beta = beta }
                let body: [UInt8] = try r.serializedBytes()
                if sentAt[i] == 0 { sentAt[i] = monotonicNanos() }
                attempts[i] += 1
                try client.send(
                    type: .rankRequest, requestID: UInt64(i + 1), body: body, deadlineMs: UInt32(timeout.milliseconds),
                    pin: pin)
                outstanding.insert(i)
            }

            func flush() {
                while flushed < results.count, let line = results[flushed] {
                    if json || batch != nil { out.write(line) } else if let t = tables[flushed] { out.write(t) }
                    flushed += 1
                }
            }

            while flushed < requests.count {
                let now = monotonicNanos()
                for (i, at) in retryAt where at <= now {
                    retryAt[i] = nil
                    try send(i)
                }
                while outstanding.count + retryAt.count < inFlight && next < requests.count {
                    if let problem = requests[next].inputError {
                        results[next] = errorLine(requests[next].idJSON, "INVALID_INPUT", problem)
                        tables[next] = "error INVALID_INPUT: \(problem)"
                        anyError = true
                    } else {
                        try send(next)
                    }
                    next += 1
                }
                flush()
                if outstanding.isEmpty && retryAt.isEmpty { continue }
                // Time out requests that waited too long.
                for i in outstanding where monotonicNanos() - sentAt[i] > timeoutNs {
                    outstanding.remove(i)
                    timedOut = true
                    let message = "no answer within \(timeout): " + (client.handshakeProblem ?? (curve.curveServer == nil
                        ? "the pool is unreachable or too slow (or it requires CURVE: --curve-server FILE.pub --curve-key FILE.key)"
                        : "the pool is unreachable or too slow, or it does not admit this client's key (--curve-clients) or --curve-server is not its key"))
                    results[i] = errorLine(requests[i].idJSON, "CLIENT_TIMEOUT", message)
                    tables[i] = "error CLIENT_TIMEOUT: \(message)"
                }
                guard !outstanding.isEmpty else { continue }
                guard let answer = try client.receive(timeoutMs: 20) else { continue }
                let i = Int(answer.header.requestID) - 1
                guard i >= 0, i < requests.count, outstanding.contains(i) else { continue }
                outstanding.remove(i)
                switch answer.header.type {
                case .rankResponse:
                    let response = try Zrank_V1_RankResponse(serializedBytes: answer.body)
                    results[i] = responseLine(requests[i].idJSON, response)
                    tables[i] = table(requests[i], response)
                case .error:
                    let error = (try? Zrank_V1_Error(serializedBytes: answer.body)) ?? Zrank_V1_Error()
                    if error.code == .overloaded && monotonicNanos() - sentAt[i] < timeoutNs {
                        let backoff = UInt64(min(1000, 10 << min(attempts[i], 7))) * 1_000_000
                        retryAt[i] = monotonicNanos() + backoff
                        continue
                    }
                    anyError = true
                    let code = error.code.name
                    results[i] = errorLine(requests[i].idJSON, code, error.message)
                    tables[i] = "error \(code): \(error.message)"
                default:
                    anyError = true
                    results[i] = errorLine(requests[i].idJSON, "INTERNAL", "unexpected answer type \(answer.header.type)")
                    tables[i] = "error: unexpected answer type"
                }
            }
            flush()
            out.flush()
            if timedOut {
                FileHandle.standardError.write(Data("zrank query: \(client.handshakeProblem ?? "some requests got no answer in time (\(endpoint))")\n".utf8))
                throw ExitCode(2)
            }
            if anyError { throw ExitCode(1) }
        }

        private func loadRequests() throws -> [QueryRequest] {
            if let text {
                var ids: [String] = []
                if let candidates { ids = candidates.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
                if let candidatesFile {
                    guard let content = try? String(contentsOfFile: candidatesFile, encoding: .utf8) else {
                        throw ValidationError("cannot read --candidates-file \(candidatesFile)")
                    }
                    ids = content.split(whereSeparator: \.isNewline).map(String.init).filter { !$0.isEmpty }
                }
                return [QueryRequest(idJSON: id.map(JSONLines.quote) ?? "null", query: text, candidates: ids)]
            }
            guard let batch, let data = FileManager.default.contents(atPath: batch) else {
                throw ValidationError("cannot read --batch file \(batch ?? "")")
            }
            var out: [QueryRequest] = []
            for (n, line) in data.split(separator: UInt8(ascii: "\n")).enumerated() {
                guard !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) else { continue }
                guard String(validating: line, as: UTF8.self) != nil,
                    let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
                else {
                    out.append(QueryRequest(idJSON: "null", query: "", candidates: [], inputError: "line \(n + 1): invalid JSON or UTF-8"))
                    continue
                }
                let idJSON = object["id"].flatMap(JSONLines.jsonFragment) ?? "null"
                guard let query = object["query"] as? String else {
                    out.append(QueryRequest(idJSON: idJSON, query: "", candidates: [], inputError: "line \(n + 1): missing string \"query\""))
                    continue
                }
                let candidates = object["candidates"] as? [String] ?? []
                if object["candidates"] != nil && object["candidates"] as? [String] == nil {
                    out.append(QueryRequest(idJSON: idJSON, query: query, candidates: [], inputError: "line \(n + 1): \"candidates\" must be an array of strings"))
                    continue
                }
                out.append(QueryRequest(idJSON: idJSON, query: query, candidates: candidates))
            }
            return out
        }

        private func responseLine(_ idJSON: String, _ r: Zrank_V1_RankResponse) -> String {
            let items = r.items.map { item -> String in
                var s = "{\"id\": \(JSONLines.quote(item.id)), \"score\": \(item.score)"
                if explain && item.hasComponents {
                    let c = item.components
                    s += ", \"components\": {\"cosine\": \(c.cosine)}"
                    if !r.headsVersion.isEmpty {
                        // Each feature's term in the CTR logit and in the engagement prediction (they sum exactly).
                        let terms = c.contributions.map {
                            "\(JSONLines.quote($0.feature)): {\"ctr_logit\": \($0.ctrLogit), \"engagement\": \($0.engagement)}"
                        }
                        s += ", \"ctr\": \(c.ctr), \"engagement\": \(c.engagement), \"combined\": \(c.combined)"
                        s += ", \"alpha\": \(c.alpha), \"beta\": \(c.beta), \"contributions\": {\(terms.joined(separator: ", "))}"
                    }
                }
                return s + "}"
            }
            let notFound = r.notFound.map(JSONLines.quote).joined(separator: ", ")
            var extra = ""
            if !r.headsVersion.isEmpty { extra += ", \"heads_version\": \(JSONLines.quote(r.headsVersion))" }
            if !r.unknownRecentIds.isEmpty { extra += ", \"unknown_recent_ids\": [\(r.unknownRecentIds.map(JSONLines.quote).joined(separator: ", "))]" }
            if r.userContextUsed { extra += ", \"user_context_used\": true" }
            return "{\"id\": \(idJSON), \"model_version\": \(JSONLines.quote(r.modelVersion)), \"items\": [\(items.joined(separator: ", "))], \"not_found\": [\(notFound)]\(extra)}"
        }

        private func table(_ q: QueryRequest, _ r: Zrank_V1_RankResponse) -> String {
            let heads = r.headsVersion.isEmpty ? "" : ", heads \(r.headsVersion)"
            var lines = ["query: \(q.query)   (model \(r.modelVersion)\(heads), \(r.timings.totalUs) µs in the pool)"]
            for (rank, item) in r.items.enumerated() {
                var line = String(format: "%4d. %8.4f  %@", rank + 1, item.score, item.id)
                if explain && item.hasComponents && !r.headsVersion.isEmpty {
                    let c = item.components
                    line += String(format: "   ctr %.4f  engagement %.3f  cosine %.3f", c.ctr, c.engagement, c.cosine)
                    let top = c.contributions.filter { $0.feature != "bias" }.sorted { abs($0.ctrLogit) > abs($1.ctrLogit) }.prefix(3)
                    line += "  (" + top.map { String(format: "%@ %+.2f", $0.feature, $0.ctrLogit) }.joined(separator: ", ") + ")"
                }
                lines.append(line)
            }
            if !r.notFound.isEmpty { lines.append("not found: \(r.notFound.joined(separator: ", "))") }
            return lines.joined(separator: "\n")
        }

        private func errorLine(_ idJSON: String, _ code: String, _ message: String) -> String {
            "{\"id\": \(idJSON), \"error\": {\"code\": \(JSONLines.quote(code)), \"message\": \(JSONLines.quote(message))}}"
        }
    }
}
