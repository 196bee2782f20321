"""Tiny synthetic latent folders for the workspace tests (no dataset or specialist needed)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from global_workspace.cli import main
from global_workspace.domains.latents import DOMAIN_FORMAT_VERSION
from global_workspace.workspace.families import family_of
from global_workspace.workspace.presets import MemberSpec
from global_workspace.workspace.sampling import Sampler
from global_workspace.workspace.settings import TrainConfig, WorkspaceConfig
from global_workspace.workspace.trainer import Task, Trainer, member_coefficients


@pytest.fixture
def one_thread() -> object:
    """Tiny matrices: extra threads only add contention on a small, loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def optimisers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """(lr, weight decay) of every ensemble trained while the test runs, in training order."""
    from global_workspace.workspace import build

    seen: list[tuple[float, float]] = []
    real = build.Trainer

    def recording(model, task, sampler, coefficients, train):  # type: ignore[no-untyped-def]
        seen.append((train.lr, train.weight_decay))
        return real(model, task, sampler, coefficients, train)

    monkeypatch.setattr(build, "Trainer", recording)
    return seen


def gw_error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """Run `gw args` and return its error: exit 2 and one line, no traceback."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 2, err
    assert err.startswith("gw: error:") and "\n" not in err
    return err


def write_domain(root: Path, name: str, splits: dict[str, np.ndarray], categorical: int = 0) -> None:
    """DATA/domains/{name}/config.json and latents/{split}.npy."""
    folder = root / "domains" / name
    (folder / "latents").mkdir(parents=True, exist_ok=True)
    dim = next(iter(splits.values())).shape[1]
    config = {
        "name": name,
        "kind": name,
        "latent_dim": int(dim),
        "loss": {"categorical": categorical},
        "format_version": DOMAIN_FORMAT_VERSION,
    }
    (folder / "config.json").write_text(json.dumps(config))
    for split, array in splits.items():
        np.save(folder / "latents" / f"{split}.npy", np.ascontiguousarray(array, dtype=np.float32))


def linear_pair(
    root: Path,
    sizes: dict[str, int] | None = None,
    n: int = 600,
    dims: tuple[int, int] = (6, 5),
    seed: int = 0,
) -> Path:
    """Domains `a` and `b` where b = a @ W: one is a fixed linear map of the other (W is 6 x 5, so
    b -> a loses a direction and unpaired structure is what fills it in)."""
    sizes = sizes or {"train": n, "val": 200, "test": 200}
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=dims) / np.sqrt(dims[0])
    a = {s: rng.normal(size=(k, dims[0])) for s, k in sizes.items()}
    write_domain(root, "a", a)
    write_domain(root, "b", {s: x @ weight for s, x in a.items()})
    return root


def cuda_graph_and_eager(
    domains: dict[str, int], members: list[MemberSpec], make_task: Callable[[], Task]
) -> tuple[Trainer, Trainer]:
    """The same training on the GPU with and without a CUDA graph, 20 steps each, checked equal
    (losses and weights, TF32 off); returned for checks of their own."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    graph, eager = (_cuda_trainer(domains, members, make_task, cuda_graph) for cuda_graph in (True, False))
    out_graph, out_eager = graph.run(20), eager.run(20)
    assert graph.graph is not None and eager.graph is None
    torch.testing.assert_close(out_graph.terms, out_eager.terms, rtol=1e-4, atol=1e-5)
    for (name, a), b in zip(graph.model.state_dict().items(), eager.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    return graph, eager


def _cuda_trainer(
    domains: dict[str, int], members: list[MemberSpec], make_task: Callable[[], Task], cuda_graph: bool
) -> Trainer:
    device = torch.device("cuda")
    gen = torch.Generator().manual_seed(0)
    train = {d: torch.randn(3000, n, generator=gen).to(device) for d, n in domains.items()}
    model = family_of(members).build_model(WorkspaceConfig(domains), [m.seed for m in members]).to(device)
    task = make_task()
    coefficients = member_coefficients(task.categories, [m.coefficients for m in members], device)
    config = TrainConfig(steps=50, batch_size=256, cuda_graph=cuda_graph)
    return Trainer(model, task, Sampler(train, members, 256), coefficients, config)


def assert_back_translation_spares_the_way_out(
    terms: dict[str, torch.Tensor],
    cycle: str,
    way_out: list[torch.nn.Parameter],
    way_back: list[torch.nn.Parameter],
) -> None:
    """terms[cycle] and its back-translation twin have one value; the cycle's gradient reaches
    both ways, the back-translation's only the way back."""
    twin = "back_translation/" + cycle.split("/", 1)[1]
    for name, out_learns in ((cycle, True), (twin, False)):
        torch.testing.assert_close(terms[name], terms[cycle])
        grads = torch.autograd.grad(
            terms[name].sum(), way_out + way_back, allow_unused=True, retain_graph=True
        )
        out, back = grads[: len(way_out)], grads[len(way_out) :]
        assert any(g is not None and bool(g.abs().sum() > 0) for g in out) == out_learns, name
        assert all(g is not None and bool(g.abs().sum() > 0) for g in back), name
