/// The SLO sweep's search for the highest open-loop rate whose step meets the objective (`zrank-bench --sweep`),
/// without sockets: the caller runs each rate `next()` asks for and `record`s whether it met the objective.
///
/// 1. Grow: from the start rate, multiply by `factor` while steps pass.
/// 2. A failing step is run once more before it counts (one noisy second on a shared machine must not end the search);
///    a repeat that passes counts as a pass.
/// 3. Bisect: once a rate has failed twice, halve the gap between the highest passing and the lowest failing rate
///    until they are within `tolerance` of each other (relative), or `maxSteps` steps have run.
/// When even the start rate fails, the search halves downwards until a rate passes or `minRate` is reached.
public struct SweepSearch: Sendable {
    /// One step run.
    public struct Step: Sendable, Equatable {
        public var rate: Double
        /// 1 for a rate's first run, 2 for its repeat after a failure.
        public var attempt: Int
        public var passed: Bool

        public init(rate: Double, attempt: Int, passed: Bool) {
            self.rate = rate
            self.attempt = attempt
            self.passed = passed
        }
    }

    public let factor: Double
    public let maxRate: Double
    public let minRate: Double
    public let tolerance: Double
    public let maxSteps: Int
    /// Every step run, in order.
    public private(set) var steps: [Step] = []
    /// The highest rate that passed (nil: none yet).
    public private(set) var highestPassing: Double?
    /// The lowest rate that failed twice (nil: none yet).
    public private(set) var lowestFailing: Double?
    private var pending: Double?
    private var repeatPending = false

    public init(start: Double, factor: Double = 1.5, maxRate: Double = 100_000, minRate: Double = 1, tolerance: Double = 0.05,
                maxSteps: Int = 20) {
        self.factor = factor
        self.maxRate = maxRate
        self.minRate = minRate
        self.tolerance = tolerance
        self.maxSteps = maxSteps
        pending = min(start, maxRate)
    }

    /// The rate to run next; nil when the search is over.
    public func next() -> Double? { steps.count < maxSteps ? pending : nil }

    /// Records the outcome of the step at `next()`'s rate and chooses the one after it.
    public mutating func record(passed: Bool) {
        guard let rate = pending else { return }
        steps.append(Step(rate: rate, attempt: repeatPending ? 2 : 1, passed: passed))
        if !passed && !repeatPending {
            repeatPending = true  // run the same rate once more before believing it
            return
        }
        repeatPending = false
        if passed {
            highestPassing = max(highestPassing ?? rate, rate)
        } else {
            lowestFailing = min(lowestFailing ?? rate, rate)
        }
        pending = choose()
    }

    private func choose() -> Double? {
        switch (highestPassing, lowestFailing) {
        case (let low?, nil):
            guard low < maxRate else { return nil }
            return min(low * factor, maxRate)
        case (nil, let high?):
            let down = high / 2
            return down >= minRate ? down : nil
        case (let low?, let high?):
            guard high > low * (1 + tolerance) else { return nil }
            return (low + high) / 2
        case (nil, nil):
            return nil
        }
    }
}
