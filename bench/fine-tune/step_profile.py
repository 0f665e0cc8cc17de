"""Times value_and_grad of the trained top layers at a step's shape (see bench/results/fine-tune/speed.md).
Run: .venv-train/bin/python bench/fine-tune/step_profile.py"""
import sys, time, os
os.environ["JAX_PLATFORMS"]="cpu"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "train"))
import jax, jax.numpy as jnp, numpy as np
from zrank_train import model as M
base = M.load_base(os.path.join(REPO, "models", "all-MiniLM-L6-v2")); cfg = base.config
p = base.params()
def bench(name, rows, L, start, drop, reps=3):
    x = jnp.asarray(np.random.randn(rows, L, 384).astype(np.float32))
    m = jnp.ones((rows, L), jnp.int32)
    tr = {k: v for k, v in p.items() if k.startswith("encoder.layer.") and int(k.split(".")[2]) >= start}
    def f(tr, key):
        e = M.pool(M.run_layers(tr, x, m, cfg, start, 6, key if drop else None), m)
        return jnp.sum(e[:, 0])
    g = jax.jit(jax.value_and_grad(f))
    key = jax.random.key(0, impl="unsafe_rbg")
    t = time.time(); jax.block_until_ready(g(tr, key)); c = time.time() - t
    ts = []
    for i in range(reps):
        t = time.time(); jax.block_until_ready(g(tr, jax.random.fold_in(key, i))); ts.append(time.time() - t)
    print(f"{name}: rows {rows} L {L} layers {6-start} dropout {drop}: compile+1st {c:.2f}s, step {min(ts):.3f}s", flush=True)
bench("a", 336, 64, 4, False)
bench("b", 336, 64, 4, True)
bench("c", 336, 48, 4, False)
bench("d", 336, 48, 5, False)
bench("e", 336, 48, 5, True)
