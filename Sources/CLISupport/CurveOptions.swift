import ArgumentParser
import Protocol

/// `--curve-server FILE.pub --curve-key FILE.key`: the options of every program that connects to a CURVE server
/// (`zrank worker`, `zrank query`, `zrank health`, `zrank-bench`, `zrankctl`).
public struct CurveClientOptions: ParsableArguments {
    @Option(name: .long, help: "The server's CURVE public key (FILE.pub, from zrank keygen): talk to it over CURVE.")
    public var curveServer: String?

    @Option(name: .long, help: "This program's CURVE secret key (FILE.key, from zrank keygen), with --curve-server.")
    public var curveKey: String?

    public init() {}

    public func validate() throws {
        guard (curveServer == nil) == (curveKey == nil) else {
            throw ValidationError("--curve-server and --curve-key go together")
        }
    }

    /// The keys, read and checked (nil: plain).
    public func keys() throws -> CurveClientKeys? {
        guard let curveServer, let curveKey else { return nil }
        do {
            return try CurveClientKeys.load(server: curveServer, key: curveKey)
        } catch {
            throw ValidationError("\(error)")
        }
    }
}

/// `--curve-key FILE --curve-clients DIR [--curve-workers DIR] [--curve-admins DIR]`: a CURVE server's options
/// (`zrank serve`, `zrank router`, `zrank coordinator`).
public struct CurveServerOptions: ParsableArguments {
    @Option(name: .long, help: "This server's CURVE secret key (FILE.key, from zrank keygen): every tcp endpoint then requires CURVE.")
    public var curveKey: String?

    @Option(name: .long, help: "Folder of *.pub keys allowed to send requests (with --curve-key).")
    public var curveClients: String?

    @Option(name: .long, help: "Folder of *.pub keys allowed to register as workers (default: --curve-clients, with a warning).")
    public var curveWorkers: String?

    @Option(name: .long, help: "Folder of *.pub keys allowed on admin and control endpoints (default: --curve-clients, with a warning).")
    public var curveAdmins: String?

    public init() {}

    public func validate() throws {
        if curveKey == nil {
            guard curveClients == nil, curveWorkers == nil, curveAdmins == nil else {
                throw ValidationError("--curve-clients, --curve-workers and --curve-admins need --curve-key")
            }
        } else if curveClients == nil {
            throw ValidationError("--curve-key needs --curve-clients DIR (the *.pub keys allowed to send requests)")
        }
    }

    /// The server's keys and allow lists, read and checked (nil: plain), and warnings to print.
    public func keys() throws -> (keys: CurveServerKeys, warnings: [String])? {
        guard let curveKey, let curveClients else { return nil }
        do {
            let own = try CurveKeyPair.load(curveKey)
            // The holder of the server's own secret is trusted everywhere (the children of `zrank serve` use it).
            var allow = CurveAllowList(keys: Dictionary(uniqueKeysWithValues: CurveDomain.allCases.map { ($0, [own.publicKey: "self"]) }))
            var warnings: [String] = []
            try allow.add(folder: curveClients, to: .clients)
            for (folder, domain, flag) in [(curveWorkers, CurveDomain.workers, "--curve-workers"), (curveAdmins, .admins, "--curve-admins")] {
                if let folder {
                    try allow.add(folder: folder, to: domain)
                } else {
                    try allow.add(folder: curveClients, to: domain)
                    warnings.append("warning: no \(flag): the client keys (--curve-clients) are also accepted as \(domain.rawValue)")
                }
            }
            return (CurveServerKeys(own: own, allow: allow), warnings)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// The same options as arguments, for a child process.
    public var arguments: [String] {
        var args: [String] = []
        for (flag, value) in [("--curve-key", curveKey), ("--curve-clients", curveClients), ("--curve-workers", curveWorkers), ("--curve-admins", curveAdmins)] {
            if let value { args += [flag, value] }
        }
        return args
    }
}
