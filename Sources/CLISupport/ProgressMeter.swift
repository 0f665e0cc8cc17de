import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Progress of one long task on stderr, shared by every zrank command: on a terminal a bar redrawn in place with the
/// count, the rate and the ETA; otherwise (a log file, CI, a pipe) a plain line every `lineInterval` seconds. Never
/// both. The final line (`finish`) is printed in either mode.
///
/// No Swift package on this machine's mirror offers a progress bar with rate, ETA and a non-terminal mode (console-kit's
/// activity indicators need its own terminal abstraction and draw nothing useful into a file), so this is the one
/// small type all commands share.
///
/// Thread-safe: `advance`/`update` may be called from encoder threads at once.
public final class ProgressMeter: @unchecked Sendable {
    /// How the meter writes.
    public enum Mode: Sendable, Equatable {
        /// A bar redrawn in place (`\r`), at most every 0.1 s.
        case bar
        /// One plain line every so many seconds.
        case lines(every: Double)
        /// Nothing but errors (tests, `--quiet`).
        case silent
    }

    public let label: String
    public let unit: String
    public let mode: Mode
    private var total: Int
    private var done = 0
    private let start: Double
    private var lastDraw = -1.0
    private var drewBar = false
    private var finished = false
    private var note: String?
    private let lock = NSLock()
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - label: what is being done, e.g. `"indexing"`.
    ///   - total: how many units in all (0 when unknown: no ETA).
    ///   - unit: the unit's plural, e.g. `"items"`.
    ///   - mode: default: a bar when stderr is a terminal, else a line every `ZRANK_PROGRESS_INTERVAL` seconds (10).
    ///   - write: where text goes (default: stderr).
    public init(
        label: String, total: Int, unit: String, mode: Mode? = nil,
        write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
    ) {
        self.label = label
        self.total = max(0, total)
        self.unit = unit
        self.mode = mode ?? ProgressMeter.defaultMode()
        self.write = write
        start = ProgressMeter.now()
    }

    /// A bar on a terminal, plain lines otherwise.
    public static func defaultMode() -> Mode {
        if isatty(STDERR_FILENO) == 1 { return .bar }
        let every = ProcessInfo.processInfo.environment["ZRANK_PROGRESS_INTERVAL"].flatMap(Double.init) ?? 10
        return .lines(every: every > 0 ? every : 10)
    }

    /// Adds `n` finished units.
    public func advance(by n: Int = 1) {
        lock.lock()
        defer { lock.unlock() }
        done += n
        drawIfDue()
    }

    /// Sets the finished count (and the total, when it became known or changed, and a short note shown after the
    /// figures, e.g. a validation loss).
    public func update(done: Int, total: Int? = nil, note: String? = nil) {
        lock.lock()
        defer { lock.unlock() }
        self.done = done
        if let total { self.total = max(0, total) }
        if let note { self.note = note }
        drawIfDue()
    }

    /// Prints the closing line: count, elapsed time and mean rate. Idempotent.
    public func finish(_ note: String? = nil) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        guard mode != .silent else { return }
        let elapsed = ProgressMeter.now() - start
        var line = "\(label): \(done) \(unit) in \(ProgressMeter.clock(elapsed))"
        if elapsed > 0 && done > 0 { line += " (\(ProgressMeter.rate(Double(done) / elapsed)) \(unit)/s)" }
        if let note { line += ", \(note)" }
        write((drewBar ? "\r\u{1B}[K" : "") + line + "\n")
    }

    /// The status text without bar: `"1200/5000 items (24%), 412 items/s, ETA 9s"`.
    public func statusText() -> String {
        lock.lock()
        defer { lock.unlock() }
        return status(elapsed: ProgressMeter.now() - start)
    }

    private func status(elapsed: Double) -> String {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var s = total > 0 ? "\(done)/\(total) \(unit) (\(min(100, done * 100 / total))%)" : "\(done) \(unit)"
        s += ", \(ProgressMeter.rate(rate)) \(unit)/s"
        if total > 0 && rate > 0 && done < total { s += ", ETA \(ProgressMeter.clock(Double(total - done) / rate))" }
        if let note { s += ", \(note)" }
        return s
    }

    private func drawIfDue() {
        guard !finished else { return }
        let now = ProgressMeter.now()
        let elapsed = now - start
        switch mode {
        case .silent:
            return
        case .bar:
            guard lastDraw < 0 || now - lastDraw >= 0.1 || (total > 0 && done >= total) else { return }
            lastDraw = now
            let width = 24
            let filled = total > 0 ? min(width, width * done / total) : 0
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            write("\r\u{1B}[K\(label) [\(bar)] \(status(elapsed: elapsed))")
            drewBar = true
        case .lines(let every):
            guard now - (lastDraw < 0 ? start : lastDraw) >= every else { return }
            lastDraw = now
            write("\(label): \(status(elapsed: elapsed))\n")
        }
    }

    private static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// `"0.4s"`, `"42s"`, `"3m05s"`, `"1h02m"`.
    static func clock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "?" }
        if seconds < 10 { return String(format: "%.1fs", seconds) }
        let s = Int(seconds.rounded())
        if s < 60 { return "\(s)s" }
        if s < 3600 { return String(format: "%dm%02ds", s / 60, s % 60) }
        return String(format: "%dh%02dm", s / 3600, (s % 3600) / 60)
    }

    static func rate(_ r: Double) -> String { r >= 100 ? String(format: "%.0f", r) : String(format: "%.1f", r) }
}
