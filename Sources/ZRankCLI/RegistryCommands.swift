import ArgumentParser
import CLISupport
import Registry
import Foundation

#if canImport(Glibc)
import Glibc
#endif

extension ZRank {
    /// `zrank registry add|list|remove|verify`
    struct RegistryCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "registry", abstract: "Manage a model registry: one folder per version (model, index, manifest).",
            subcommands: [Add.self, List.self, Remove.self, Verify.self])

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Register a model under a version name and build its catalog index (or reuse another version's).",
                discussion: """
                    zrank registry add --registry DIR --version NAME --model FILE.zrm --catalog items.jsonl [--heads heads.json]
                    zrank registry add --registry DIR --version NAME --from VERSION --heads heads.json   (a heads refresh)
                    """)

            @Option(name: .long, help: "The registry folder (created if missing).")
            var registry: String

            @Option(name: .long, help: "The version name (what workers announce, responses report, pins name).")
            var version: String

            @Option(name: .long, help: "The model file (*.zrm); its checksum must verify.")
            var model: String?

            @Option(name: .long, help: "The catalog, JSON lines {\"id\", \"title\", \"text\"?, \"popularity\"?, \"price\"?}.")
            var catalog: String?

            @Option(name: .long, help: "Ranking heads (zrank train-heads) this version ranks with; without: cosine.")
            var heads: String?

            @Option(name: .long, help: "Reuse this version's model and index (with --heads): a heads refresh.")
            var from: String?

            func validate() throws {
                if from != nil {
                    guard heads != nil, model == nil, catalog == nil else {
                        throw ValidationError("--from VERSION takes --heads FILE and no --model/--catalog")
                    }
                } else {
                    guard model != nil, catalog != nil else { throw ValidationError("give --model and --catalog (or --from and --heads)") }
                }
            }

            @Option(name: .long, help: "Free text kept in the manifest.")
            var notes: String = ""

            @OptionGroup var encoding: IndexingOptions

            func run() throws {
                do {
                    let r = try Registry(path: registry)
                    let m: RegistryManifest
                    if let from, let heads {
                        m = try r.add(version: version, from: from, heads: heads, notes: notes)
                    } else {
                        let meter = ProgressMeter(label: "indexing", total: 0, unit: "items")
                        m = try r.add(
                            version: version, model: model!, catalog: catalog!, heads: heads, notes: notes,
                            threads: encoding.resolvedThreads
                        ) { done, total in meter.update(done: done, total: total) }
                        meter.finish("\(encoding.resolvedThreads) threads")
                    }
                    print("registered \(m.version): model \(m.modelContentHash.prefix(12)), \(m.catalogSize) items, catalog \(m.catalogSourceHash.prefix(12))"
                        + (m.headsVersion.map { ", heads \($0)" } ?? "") + (m.reusedFrom.map { " (model and index of \($0))" } ?? ""))
                } catch {
                    throw CLIFailure("zrank registry add: \(error)")
                }
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List registered versions.")

            @Option(name: .long, help: "The registry folder.")
            var registry: String

            @Flag(name: .long, help: "Print the manifests as JSON.")
            var json = false

            func run() throws {
                let versions: [RegistryManifest]
                do {
                    versions = try Registry(path: registry).list()
                } catch {
                    throw CLIFailure("zrank registry list: \(error)")
                }
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    print(String(decoding: try encoder.encode(versions), as: UTF8.self))
                    return
                }
                print("VERSION              MODEL         ITEMS  CATALOG       CREATED               NOTES")
                for m in versions {
                    print("\(m.version.padding(toLength: 20, withPad: " ", startingAt: 0)) \(m.modelContentHash.prefix(12))  \(String(m.catalogSize).padding(toLength: 6, withPad: " ", startingAt: 0)) \(m.catalogSourceHash.prefix(12))  \(m.createdAt.padding(toLength: 21, withPad: " ", startingAt: 0)) \(m.notes)")
                }
            }
        }

        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Delete a registered version.")

            @Option(name: .long, help: "The registry folder.")
            var registry: String

            @Option(name: .long, help: "The version to delete.")
            var version: String

            func run() throws {
                do {
                    try Registry(path: registry).remove(version)
                    print("removed \(version)")
                } catch {
                    throw CLIFailure("zrank registry remove: \(error)")
                }
            }
        }

        struct Verify: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Check a version's model checksum and index.")

            @Option(name: .long, help: "The registry folder.")
            var registry: String

            @Option(name: .long, help: "The version to check.")
            var version: String

            func run() throws {
                do {
                    try Registry(path: registry).verify(version)
                    print("\(version): OK")
                } catch {
                    throw CLIFailure("zrank registry verify: \(error)")
                }
            }
        }
    }
}
