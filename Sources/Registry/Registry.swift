import Crypto
import Foundation
import Model
import Protocol
import Ranking

/// What a registry version records next to its model and index (`manifest.json`).
public struct RegistryManifest: Codable, Sendable, Equatable {
    /// The registry name: what workers announce, responses report, pins and rollouts name.
    public var version: String
    /// Hex SHA-256 content hash of the model (shared by every name registered from the same model).
    public var modelContentHash: String
    /// Hex SHA-256 of the catalog file the index was built from.
    public var catalogSourceHash: String
    public var createdAt: String
    public var notes: String
    /// Items in the index.
    public var catalogSize: Int
    /// The version name stored inside the model file itself.
    public var modelFileVersion: String
    /// The heads this version ranks with (nil: cosine), and the version whose model and index it reuses.
    public var headsVersion: String?
    public var headsHash: String?
    public var reusedFrom: String?
    /// Bytes of each file of the version (`model.zrm`, `catalog.zri`, `heads.json`) when it was registered and fully
    /// verified: `quickCheck` compares sizes instead of hashing at rollout time (nil in manifests that predate it).
    public var fileSizes: [String: Int]?

    enum CodingKeys: String, CodingKey {
        case version
        case modelContentHash = "model_content_hash"
        case catalogSourceHash = "catalog_source_hash"
        case createdAt = "created_at"
        case notes
        case catalogSize = "catalog_size"
        case modelFileVersion = "model_file_version"
        case headsVersion = "heads_version"
        case headsHash = "heads_hash"
        case reusedFrom = "reused_from"
        case fileSizes = "file_sizes"
    }
}

/// Why a registry operation was refused: a code to match on and a message that names the version or file.
public struct RegistryError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The kinds of refusal.
    public enum Code: Sendable, Equatable {
        /// Not 1-64 letters, digits, '.', '_' or '-' (or starts with '.').
        case invalidName
        case notRegistered
        case alreadyRegistered
        /// The live version or an active rollout's target.
        case inUse
        /// A file does not verify (checksum, manifest, index built by another model, size changed).
        case corrupt
        /// The input offered to `add` is not acceptable (a corrupt model, heads for another model).
        case refused
        /// The file system failed.
        case io
    }

    public let code: Code
    public let description: String

    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}

/// A model registry folder: one sub-folder per version holding `model.zrm`, `catalog.zri` and `manifest.json`.
public struct Registry: Sendable {
    public static let modelFile = "model.zrm"
    public static let indexFile = "catalog.zri"
    public static let manifestFile = "manifest.json"
    public static let headsFile = "heads.json"

    public let root: URL

    /// Opens (and creates when missing) the registry folder.
    public init(path: String) throws {
        root = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            throw RegistryError(.io, "\(path): cannot create the registry folder: \(error.localizedDescription)")
        }
    }

    /// Version names: 1-64 characters of letters, digits, '.', '_' and '-', not starting with '.' (`VersionName`).
    public static func validate(name: String) throws(RegistryError) {
        if let problem = VersionName.problem(name) { throw RegistryError(.invalidName, problem) }
    }

    public func folder(_ version: String) -> URL { root.appendingPathComponent(version) }
    public func modelPath(_ version: String) -> String { folder(version).appendingPathComponent(Self.modelFile).path }
    public func indexPath(_ version: String) -> String { folder(version).appendingPathComponent(Self.indexFile).path }
    /// The version's heads file, when it has one (without: it ranks by cosine).
    public func headsPath(_ version: String) -> String? {
        let path = folder(version).appendingPathComponent(Self.headsFile).path
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }

    /// Registers `model` (checksum verified) under `version` with an index built from `catalog`, and optional ranking
    /// heads (checked against the model).
    /// - Parameters:
    ///   - threads: encoder threads for the index.
    ///   - progress: (items done, total) while the index is built.
    @discardableResult
    public func add(
        version: String, model: String, catalog: String, heads: String? = nil, notes: String = "", threads: Int = 1,
        progress: @Sendable (Int, Int) -> Void = { _, _ in }
    ) throws -> RegistryManifest {
        // Verify before copying: a corrupt file is refused with the model file's own error.
        let source: ModelFile
        do {
            source = try ModelFile(path: model)
        } catch {
            throw RegistryError(.refused, "refusing \(model): \(error)")
        }
        return try stage(version) { staging in
            try FileManager.default.copyItem(atPath: model, toPath: staging.appendingPathComponent(Self.modelFile).path)
            let copied = try ModelFile(path: staging.appendingPathComponent(Self.modelFile).path)
            guard copied.contentHash == source.contentHash else { throw RegistryError(.io, "the copied model does not verify") }
            let (count, catalogHash) = try CatalogIndexBuilder.build(
                model: copied, catalog: catalog, output: staging.appendingPathComponent(Self.indexFile).path,
                threads: threads, progress: progress)
            var manifest = RegistryManifest(
                version: version, modelContentHash: copied.contentHash, catalogSourceHash: catalogHash,
                createdAt: ISO8601DateFormatter().string(from: Date()), notes: notes, catalogSize: count,
                modelFileVersion: copied.version)
            if let heads { try Self.addHeads(heads, to: staging, model: copied, manifest: &manifest) }
            return manifest
        }
    }

    /// Registers `version` reusing another version's model and index with new ranking heads: a heads refresh, rolled
    /// out like any version.
    @discardableResult
    public func add(version: String, from base: String, heads: String, notes: String = "") throws -> RegistryManifest {
        let old = try manifest(base)
        try verify(base)
        return try stage(version) { staging in
            for file in [Self.modelFile, Self.indexFile] {
                let from = folder(base).appendingPathComponent(file).path
                let to = staging.appendingPathComponent(file).path
                // A hard link shares the pages (and the mmap); a copy where links are not possible.
                if link(from, to) != 0 { try FileManager.default.copyItem(atPath: from, toPath: to) }
            }
            let model = try ModelFile(path: staging.appendingPathComponent(Self.modelFile).path)
            var manifest = old
            manifest.version = version
            manifest.createdAt = ISO8601DateFormatter().string(from: Date())
            manifest.notes = notes
            manifest.reusedFrom = base
            manifest.headsVersion = nil
            manifest.headsHash = nil
            try Self.addHeads(heads, to: staging, model: model, manifest: &manifest)
            return manifest
        }
    }

    private static func addHeads(_ path: String, to staging: URL, model: ModelFile, manifest: inout RegistryManifest) throws {
        let heads: RankingHeads
        do {
            heads = try RankingHeads.load(path)
        } catch {
            throw RegistryError(.refused, "refusing heads \(path): \(error)")
        }
        guard heads.modelContentHash == model.contentHash else {
            throw RegistryError(.refused, "refusing heads \(path): trained with another model (content hash \(heads.modelContentHash.prefix(12)), this version's is \(model.contentHash.prefix(12)))")
        }
        guard heads.dimension == model.config.hiddenSize else {
            throw RegistryError(.refused, "refusing heads \(path): dimension \(heads.dimension), the model's is \(model.config.hiddenSize)")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.write(to: staging.appendingPathComponent(headsFile))
        manifest.headsVersion = heads.headsVersion
        manifest.headsHash = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
    }

    /// Builds a version in a staging folder and moves it into place (nothing is left behind on failure).
    private func stage(_ version: String, _ fill: (URL) throws -> RegistryManifest) throws -> RegistryManifest {
        try Self.validate(name: version)
        let dest = folder(version)
        guard !FileManager.default.fileExists(atPath: dest.path) else {
            throw RegistryError(.alreadyRegistered, "version \(version) is already registered (remove it first)")
        }
        let staging = root.appendingPathComponent(".staging-\(version)-\(getpid())")
        try? FileManager.default.removeItem(at: staging)
        do {
            try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
            var manifest = try fill(staging)
            manifest.fileSizes = Self.sizes(in: staging)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(manifest).write(to: staging.appendingPathComponent(Self.manifestFile))
            try FileManager.default.moveItem(at: staging, to: dest)
            return manifest
        } catch {
            try? FileManager.default.removeItem(at: staging)
            if let e = error as? RegistryError { throw e }
            throw RegistryError(.io, "cannot register \(version): \(error)")
        }
    }

    /// Sizes of the version files present in `folder`.
    private static func sizes(in folder: URL) -> [String: Int] {
        var out: [String: Int] = [:]
        for file in [modelFile, indexFile, headsFile] {
            let path = folder.appendingPathComponent(file).path
            if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int { out[file] = size }
        }
        return out
    }

    /// A cheap check for the coordinator's poll loop: the version is registered and its files are regular files of
    /// the sizes recorded when it was registered (and fully verified). Workers verify checksums when they load it.
    public func quickCheck(_ version: String) throws(RegistryError) {
        try Self.validate(name: version)
        let m = try manifest(version)
        let headsPresent = m.headsHash != nil || (try? FileManager.default.attributesOfItem(atPath: folder(version).appendingPathComponent(Self.headsFile).path)) != nil
        for file in [Self.modelFile, Self.indexFile] + (headsPresent ? [Self.headsFile] : []) {
            let path = folder(version).appendingPathComponent(file).path
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                attributes[.type] as? FileAttributeType == .typeRegular
            else {
                throw RegistryError(.corrupt, "version \(version): \(file) is missing or not a regular file (a FIFO, a device, a symlink); refusing it")
            }
            if let expected = m.fileSizes?[file], let size = attributes[.size] as? Int, size != expected {
                throw RegistryError(.corrupt, "version \(version): \(file) is \(size) bytes, the manifest says \(expected)")
            }
        }
    }

    /// The manifest of one version.
    public func manifest(_ version: String) throws(RegistryError) -> RegistryManifest {
        let url = folder(version).appendingPathComponent(Self.manifestFile)
        guard let data = try? Data(contentsOf: url) else { throw RegistryError(.notRegistered, "version \(version) is not registered") }
        do {
            return try JSONDecoder().decode(RegistryManifest.self, from: data)
        } catch {
            throw RegistryError(.corrupt, "\(url.path): corrupt manifest")
        }
    }

    /// Every registered version, by name.
    public func list() throws -> [RegistryManifest] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().compactMap { try? manifest($0) }
    }

    /// Deletes a version.
    public func remove(_ version: String) throws {
        try Self.validate(name: version)
        _ = try manifest(version)
        // The live version, and an active rollout's target, are in use: workers (re)start on them.
        if let record = try RolloutStore(registry: self).load() {
            if record.stable == version {
                throw RegistryError(.inUse, "version \(version) is the live version (rollout.json); roll out another one first")
            }
            if (record.state == .running || record.state == .paused) && record.plan?.target == version {
                throw RegistryError(.inUse, "version \(version) is being rolled out; roll it back first")
            }
        }
        do {
            try FileManager.default.removeItem(at: folder(version))
        } catch {
            throw RegistryError(.io, "cannot remove \(version): \(error.localizedDescription)")
        }
    }

    /// Checks a version's files: the model verifies and the index was built with it.
    public func verify(_ version: String) throws {
        let m = try manifest(version)
        let model: ModelFile
        do {
            model = try ModelFile(path: modelPath(version))
        } catch {
            throw RegistryError(.corrupt, "version \(version): \(error)")
        }
        guard model.contentHash == m.modelContentHash else {
            throw RegistryError(.corrupt, "version \(version): model content hash does not match its manifest")
        }
        do {
            _ = try CatalogIndex(path: indexPath(version), model: model)
        } catch {
            throw RegistryError(.corrupt, "version \(version): \(error)")
        }
        if let heads = headsPath(version) {
            do {
                let h = try RankingHeads.load(heads)
                guard h.modelContentHash == model.contentHash else { throw HeadsError("trained with another model") }
            } catch {
                throw RegistryError(.corrupt, "version \(version): heads: \(error)")
            }
        }
    }
}
