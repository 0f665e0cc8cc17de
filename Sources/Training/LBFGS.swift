/// Limited-memory BFGS (two-loop recursion, Armijo backtracking): deterministic, no randomness.
///
/// Minimises `f` given `evaluate(x) -> (f(x), ∇f(x))`; `onIteration(iteration, x, f)` returns false to stop early
/// (early stopping on a validation split).
public struct LBFGS {
    public var memory = 8
    public var maxIterations = 200
    /// Stop when the gradient's max-norm falls below this.
    public var gradientTolerance = 1e-6

    public init() {}

    public func minimise(
        _ start: [Double], evaluate: ([Double]) -> (Double, [Double]), onIteration: (Int, [Double], Double) -> Bool = { _, _, _ in true }
    ) -> [Double] {
        var x = start
        var (fx, g) = evaluate(x)
        var s: [[Double]] = []
        var y: [[Double]] = []
        var rho: [Double] = []
        func dot(_ a: [Double], _ b: [Double]) -> Double {
            var t = 0.0
            for i in a.indices { t += a[i] * b[i] }
            return t
        }
        for iteration in 1...maxIterations {
            if g.map(abs).max() ?? 0 < gradientTolerance { break }
            // Two-loop recursion: d = -H g.
            var q = g
            var alphas = [Double](repeating: 0, count: s.count)
            for i in stride(from: s.count - 1, through: 0, by: -1) {
                alphas[i] = rho[i] * dot(s[i], q)
                for j in q.indices { q[j] -= alphas[i] * y[i][j] }
            }
            if let ls = s.last, let ly = y.last {
                let gamma = dot(ls, ly) / max(dot(ly, ly), 1e-300)
                for j in q.indices { q[j] *= gamma }
            } else {
                let norm = dot(g, g).squareRoot()
                for j in q.indices { q[j] /= max(norm, 1) }
            }
            for i in s.indices {
                let beta = rho[i] * dot(y[i], q)
                for j in q.indices { q[j] += s[i][j] * (alphas[i] - beta) }
            }
            var direction = q.map { -$0 }
            var slope = dot(g, direction)
            if slope >= 0 {  // not a descent direction: restart from steepest descent
                direction = g.map { -$0 }
                slope = dot(g, direction)
                s.removeAll()
                y.removeAll()
                rho.removeAll()
            }
            var step = 1.0
            var accepted: ([Double], Double, [Double])?
            for _ in 0..<40 {
                let candidate = zip(x, direction).map { $0 + step * $1 }
                let (fc, gc) = evaluate(candidate)
                if fc.isFinite && fc <= fx + 1e-4 * step * slope {
                    accepted = (candidate, fc, gc)
                    break
                }
                step *= 0.5
            }
            guard let (nx, nf, ng) = accepted else { break }
            let sk = zip(nx, x).map { $0 - $1 }
            let yk = zip(ng, g).map { $0 - $1 }
            let sy = dot(sk, yk)
            if sy > 1e-12 {
                s.append(sk)
                y.append(yk)
                rho.append(1 / sy)
                if s.count > memory {
                    s.removeFirst()
                    y.removeFirst()
                    rho.removeFirst()
                }
            }
            let improvement = fx - nf
            x = nx
            fx = nf
            g = ng
            if !onIteration(iteration, x, fx) { break }
            if improvement < 1e-10 * max(1, abs(fx)) { break }
        }
        return x
    }
}
