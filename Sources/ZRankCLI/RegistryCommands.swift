import ArgumentParser
import Coordinator
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
                abstract: "Register a model under a version name and build its catalog index.")

            @Option(name: .long, help: "The registry folder (created if missing).")
            var registry: String

            @Option(name: .long, help: "The version name (what workers announce, responses report, pins name).")
            var version: String

            @Option(name: .long, help: "The model file (*.zrm); its checksum must verify.")
            var model: String

            @Option(name: .long, help: "The catalog, JSON lines {\"id\", \"title\", \"text\"?}.")
            var catalog: String

            @Option(name: .long, help: "Free text kept in the manifest.")
            var notes: String = ""

            func run() throws {
                do {
                    let terminal = isatty(STDERR_FILENO) == 1
                    let m = try Registry(path: registry).add(version: version, model: model, catalog: catalog, notes: notes) { done, total in
                        guard terminal else { return }
                        FileHandle.standardError.write(Data("\rindexing \(done)/\(total)".utf8))
                    }
                    if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
                    print("registered \(m.version): model \(m.modelContentHash.prefix(12)), \(m.catalogSize) items, catalog \(m.catalogSourceHash.prefix(12))")
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
