import ArgumentParser
import CLISupport
import Foundation
import Model
import Ranking
import Training

#if canImport(Glibc)
import Glibc
#endif

extension ZRank {
    /// `zrank train-heads --model FILE.zrm --index FILE.zri --log LOG.jsonl --out heads.json [...]`
    struct TrainHeads: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "train-heads",
            abstract: "Fit the CTR and engagement heads on an impression log (the transformer stays frozen).",
            discussion: """
                Log lines: {"query", "item", "user": {"id", "recent": [...]}?, "position"?, "clicked", "dwell_s"?}.
                Malformed lines are counted and reported with their numbers; training goes on with the rest. Reports
                validation CTR log-loss and AUC, engagement RMSE and NDCG@10, each next to the cosine-only baseline.
                """)

        @Option(name: .long, help: "The model file (*.zrm) the index was built with.")
        var model: String

        @Option(name: .long, help: "The catalog index (*.zri, with item facts).")
        var index: String

        @Option(name: .long, help: "The impression log, JSON lines.")
        var log: String

        @Option(name: .long, help: "The heads file to write (heads.json).")
        var out: String

        @Option(name: .long, help: "Share of sessions (user, query) held out for validation and early stopping.")
        var validation: Double = 0.2

        @Option(name: .long, help: "L2 strength for every feature (default: chosen per head on the validation split from a grid of scalar x interaction strengths).")
        var l2: Double?

        @Option(name: .long, help: "Seed of the validation split.")
        var seed: UInt64 = 1

        @Option(name: .long, help: "Name responses report as heads_version (default: the output file's name).")
        var headsVersion: String?

        @Flag(name: .long, help: "Train without the personal features (for comparison).")
        var noPersonal = false

        @Option(name: .long, help: "A simulator truth file (zrank simulate-log --truth): also report NDCG@10 against the true attraction, per user segment.")
        var truth: String?

        @Flag(name: .long, help: "Print the report as JSON.")
        var json = false

        @Option(name: .long, help: "Hold out exactly these queries (one per line, e.g. the validation_queries.txt zrank fine-tune writes) instead of a random share of sessions.")
        var validationQueries: String?

        func validate() throws {
            guard validation > 0 && validation < 1 else { throw ValidationError("--validation must be between 0 and 1 (exclusive)") }
            if let l2 { guard l2 >= 0 && l2.isFinite else { throw ValidationError("--l2 must be a non-negative number") } }
        }

        func run() throws {
            let file = try loadModel(model, command: "train-heads")
            var options = TrainingOptions()
            options.validation = validation
            options.l2 = l2
            options.seed = seed
            options.usePersonal = !noPersonal
            if let validationQueries {
                guard let text = try? String(contentsOfFile: validationQueries, encoding: .utf8) else {
                    throw CLIFailure("zrank train-heads: cannot read --validation-queries \(validationQueries)")
                }
                let queries = Set(text.split(separator: "\n").map(String.init).filter { !$0.isEmpty })
                guard !queries.isEmpty else { throw CLIFailure("zrank train-heads: \(validationQueries) lists no queries") }
                options.validationQueries = queries
            }
            options.headsVersion = headsVersion ?? URL(fileURLWithPath: out).deletingPathExtension().lastPathComponent
            let result: HeadsTrainer.Result
            do {
                let idx = try CatalogIndex(path: index, model: file)
                if !idx.hasItemFacts {
                    FileHandle.standardError.write(Data("zrank train-heads: \(index) has no item facts (format 1): lexical and prior features are 0; rebuild it with `zrank index`\n".utf8))
                }
                var meter: ProgressMeter?
                var stage = ""
                result = try HeadsTrainer.train(model: file, index: idx, log: log, options: options) { step in
                    switch step {
                    case .encodingQueries(let done, let total):
                        if stage != "queries" {
                            stage = "queries"
                            meter = ProgressMeter(label: "encoding queries", total: total, unit: "queries")
                        }
                        meter?.update(done: done)
                    case .fitting(let head, let iteration, let maxIterations, let loss):
                        if stage != head {
                            meter?.finish()
                            stage = head
                            meter = ProgressMeter(label: "fitting the \(head) head", total: maxIterations, unit: "iterations")
                        }
                        meter?.update(done: iteration, note: String(format: "validation loss %.5f", loss))
                    }
                }
                meter?.finish()
                try result.heads.write(out)
            } catch let error as TrainingError {
                throw CLIFailure("zrank train-heads: \(error)")
            } catch let error as IndexError {
                throw CLIFailure("zrank train-heads: \(error)")
            }
            var r = result.report
            if let truth {
                guard let data = FileManager.default.contents(atPath: truth) else {
                    throw CLIFailure("zrank train-heads: \(truth): cannot read")
                }
                if let t = try? JSONDecoder().decode(SimulationTruth.self, from: data) {
                    let gain = { (row: ValidationRow) in t.attraction(user: row.userID, query: row.query, item: row.item) ?? 0 }
                    r.segments = RankingMetrics.bySegment(result.validation, segment: { user in
                        user.flatMap { t.tastes[$0] }.map { $0.strong ? "truth_strong_taste" : "truth_no_taste" }
                    }, gain: gain).merging(RankingMetrics.bySegment(result.validation, segment: { _ in "truth_all" }, gain: gain)) { a, _ in a }
                } else {
                    // Graded judgements (simulate-log --graded --truth): NDCG@10 with gain 2^grade - 1 per session.
                    let grades: [String: [String: Int]]
                    do {
                        grades = try GradedSimulator.readTruth(truth)
                    } catch {
                        throw CLIFailure("zrank train-heads: \(truth): neither a simulate-log truth file nor graded judgements: \(error)")
                    }
                    let gain = { (row: ValidationRow) in Double(grades[row.query]?[row.item] ?? 0) }
                    r.segments = RankingMetrics.bySegment(result.validation, segment: { _ in "truth_graded" }, gain: gain)
                }
            }
            for p in r.problems {
                FileHandle.standardError.write(Data("zrank train-heads: \(log): line \(p.line): \(p.reason) (skipped)\n".utf8))
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                // A figure without data (e.g. AUC with one class in the validation split) is written as "nan".
                encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
                print(String(decoding: try encoder.encode(r), as: UTF8.self))
                return
            }
            print("wrote \(out): heads \(result.heads.headsVersion), \(r.trainRows) training / \(r.validationRows) validation impressions (\(r.validationSessions) sessions)")
            if r.malformedLines > 0 || r.unknownItems > 0 {
                print("skipped: \(r.malformedLines) malformed lines, \(r.unknownItems) impressions of items not in the index")
            }
            print(String(format: "CTR log-loss  %.4f   (cosine only %.4f)", r.ctrLogLoss, r.baselineLogLoss))
            print(String(format: "CTR AUC       %.4f   (cosine only %.4f)", r.ctrAUC, r.baselineAUC))
            if let e = r.engagementRMSE, let b = r.baselineEngagementRMSE {
                print(String(format: "engagement RMSE %.4f (mean only %.4f), %d clicked impressions with dwell", e, b, r.engagementRows))
            } else {
                print("engagement: no dwell times in the log: CTR-only heads (beta 0)")
            }
            print(String(format: "NDCG@10       %.4f   (cosine only %.4f)", r.ndcg10, r.baselineNDCG10))
            for (head, choice) in [("CTR", r.ctrL2), ("engagement", r.engagementL2)] {
                guard let choice else { continue }
                let how = choice.chosenBy == "fixed" ? "fixed by --l2" : "best \(choice.chosenBy.replacingOccurrences(of: "_", with: " ")) of \(choice.trials.count) tried"
                if let candidate = choice.candidate {
                    print("\(head) head: \(candidate) (\(how); no fitted L2 pair ranked the validation sessions better)")
                } else {
                    print(String(format: "%@ head L2: scalar features %g, interaction features %g (%@)", head, choice.scalar, choice.interaction, how))
                }
            }
            for (name, s) in (r.segments ?? [:]).sorted(by: { $0.key < $1.key }) {
                print(String(
                    format: "  %@: %d sessions, NDCG@10 %.4f (cosine %.4f), AUC %.4f (cosine %.4f)", name, s.sessions, s.ndcg10,
                    s.baselineNDCG10, s.auc, s.baselineAUC))
            }
        }
    }

    /// `zrank simulate-log --catalog items.jsonl --queries FILE --users N --sessions N --out LOG.jsonl [--seed N]`
    struct SimulateLog: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "simulate-log",
            abstract: "Write impression logs from a hidden ground truth (catalog structure, user taste, position bias).",
            discussion: """
                The truth never looks at embeddings. Default mode: relevance from the item's category and the user's \
                taste; --truth writes the users' tastes (JSON). --graded: graded relevance 0-3 (exact, substitute with \
                one attribute wrong, partial, irrelevant: accessories and parts count as irrelevant) over generated and \
                real queries, a position-based click model and dwell by grade; --truth writes {"query","item","grade"} \
                lines for every pair shown.
                """)

        @Option(name: .long, help: "The demo catalog (with category, color, style, price, popularity).")
        var catalog: String

        @Option(name: .long, help: "Queries with their product class (WANDS query.csv).")
        var queries: String

        @Option(name: .long, help: "Simulated users.")
        var users: Int = 200

        @Option(name: .long, help: "Sessions (one query by one user, 20 impressions each).")
        var sessions: Int = 2000

        @Option(name: .long, help: "The log to write (JSON lines).")
        var out: String

        @Option(name: .long, help: "Random seed.")
        var seed: UInt64 = 1

        @Option(name: .long, help: "Also write the hidden truth here (the users' tastes as JSON; with --graded the grades as JSON lines).")
        var truth: String?

        @Flag(name: .long, help: "Graded relevance truth (0-3) that a frozen encoder gets wrong: attribute mismatches, accessories, near-duplicates.")
        var graded = false

        @Option(name: .long, help: "With --graded: distinct queries sessions draw from.")
        var queryPool: Int = 600

        func validate() throws {
            guard users >= 1, sessions >= 1 else { throw ValidationError("--users and --sessions must be at least 1") }
            guard queryPool >= 1 else { throw ValidationError("--query-pool must be at least 1") }
        }

        func run() throws {
            if graded { return try runGraded() }
            var options = LogSimulator.Options()
            options.users = users
            options.sessions = sessions
            options.seed = seed
            do {
                let truthModel = try LogSimulator(catalog: catalog, queries: queries).write(to: out, options: options)
                let tastes = truthModel.tastes
                if let truth {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    try encoder.encode(truthModel).write(to: URL(fileURLWithPath: truth))
                }
                print("wrote \(out): \(sessions) sessions, \(users) users (\(tastes.values.filter(\.strong).count) with strong taste)")
            } catch let error as TrainingError {
                throw CLIFailure("zrank simulate-log: \(error)")
            }
        }

        func runGraded() throws {
            var options = GradedSimulator.Options()
            options.sessions = sessions
            options.seed = seed
            options.queryPool = queryPool
            do {
                let judged = try GradedSimulator(catalog: catalog, queries: queries).write(to: out, options: options)
                if let truth { try GradedSimulator.writeTruth(judged, to: truth) }
                let counts = (0...3).map { g in judged.filter { $0.grade == g }.count }
                print("wrote \(out): \(sessions) sessions over \(Set(judged.map(\.query)).count) queries; shown pairs by grade 0-3: "
                    + counts.map(String.init).joined(separator: " / "))
            } catch let error as TrainingError {
                throw CLIFailure("zrank simulate-log: \(error)")
            }
        }
    }
}
