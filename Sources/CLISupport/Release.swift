import CZMQ

/// The release every zrank executable reports with `--version`.
public enum ZRankRelease {
    /// The product version, one for all executables.
    public static let version = "0.1.0"

    /// The libzmq the process runs with, e.g. `"4.3.4"`.
    public static var libzmqVersion: String {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    /// `"NAME 0.1.0 (libzmq 4.3.4)"`, with `extra` details before libzmq's.
    public static func versionString(_ name: String, extra: [String] = []) -> String {
        "\(name) \(version) (\((extra + ["libzmq \(libzmqVersion)"]).joined(separator: ", ")))"
    }
}
