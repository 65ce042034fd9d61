"""Test doubles for the seams, registered by name exactly as a user's plugin would be:
a fake trainer, an in-process executor, and a scripted selector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

from eureka_lab.executors.base import EXECUTORS, Executor, Job, JobEvent, JobOutput, OnEvent
from eureka_lab.executors.job import failure, run_job
from eureka_lab.runs.records import CheckpointStats, TrainingReport
from eureka_lab.runs.scores import Trained
from eureka_lab.selectors.base import SELECTORS, Ranking, Selector
from eureka_lab.trainers import TRAINERS, Budget, Resources, Trainer


class FakeSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    n_envs: int = 2
    action: int = 2
    """The action the fake policy always takes (MountainCar: 2 pushes right)."""


class FakeTrainer(Trainer):
    """Calls the reward on random observations and 'learns' a constant action."""

    Settings: ClassVar[type[BaseModel]] = FakeSettings
    trained: ClassVar[list[str]] = []

    def __init__(self, settings: FakeSettings) -> None:
        self.settings = settings

    @property
    def n_envs(self) -> int:
        return self.settings.n_envs

    @property
    def resources(self) -> Resources:
        return Resources(threads=1, memory_bytes=None)

    def describe(self) -> dict[str, Any]:
        return {"algorithm": "a fake trainer", "settings": {}}

    def train(self, task: Any, load_reward: Any, budget: Budget, report: Any) -> TrainingReport:
        fn = load_reward()
        rng = np.random.default_rng(budget.seed)
        n = self.n_envs
        names: list[str] = []
        for k in range(1, budget.checkpoints + 1):
            obs = rng.normal(size=(n, 2))
            total, comps = fn(obs, np.zeros(n, dtype=np.int64), obs, {}) if fn else (obs[:, 0], {})
            names = sorted(comps)
            stats = {
                c: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))}
                for c, v in comps.items()
            }
            step = k * budget.timesteps // budget.checkpoints
            report(
                CheckpointStats(step=step, components=stats),
                {"policy/action": np.array([self.settings.action], dtype=np.float32)},
            )
        FakeTrainer.trained.append(task.name)
        return TrainingReport(steps=budget.timesteps, seconds=0.01, components=names)

    def policy(self, task: Any, arrays: dict[str, np.ndarray]) -> Any:
        action = int(arrays["policy/action"][0])
        return lambda obs: np.full(len(obs), action, dtype=np.int64)


class GrowingTrainer(Trainer):
    """A resumable fake: its constant action grows with the steps trained, at a rate set by
    the reward (its mean on fixed observations), and it continues from its saved state."""

    Settings: ClassVar[type[BaseModel]] = FakeSettings
    resumable: ClassVar[bool] = True
    budgets: ClassVar[list[Budget]] = []

    def __init__(self, settings: FakeSettings) -> None:
        self.settings = settings

    n_envs = 2
    resources = Resources(threads=1, memory_bytes=None)

    def describe(self) -> dict[str, Any]:
        return {"algorithm": "a growing fake", "settings": {}}

    def train(self, task: Any, load_reward: Any, budget: Budget, report: Any) -> TrainingReport:
        GrowingTrainer.budgets.append(budget)
        if budget.start:  # a continued training must get the state it saved at that step
            assert budget.resume is not None and budget.resume["state/step"][0] == budget.start
        fn = load_reward()
        obs = np.ones((2, 3))
        total, _ = fn(obs, np.zeros((2, 1)), obs, {})
        rate = float(np.mean(total))
        step = budget.start
        while step < budget.timesteps:
            step = min(budget.timesteps, step + budget.interval)
            torque = np.clip(rate * step / 20_000, -2.0, 2.0)
            last = step >= budget.timesteps
            state = {"state/step": np.array([step], dtype=np.float64)} if last else None
            policy = {"policy/torque": np.array([torque], dtype=np.float32)}
            stats = CheckpointStats(step=step, components={})
            if state is not None and budget.keep_state:
                report(stats, policy, state=state)
            else:
                report(stats, policy)
        return TrainingReport(steps=step, seconds=0.01, components=["height", "speed"])

    def policy(self, task: Any, arrays: dict[str, np.ndarray]) -> Any:
        torque = float(arrays["policy/torque"][0])
        return lambda obs: np.full((len(obs), 1), torque, dtype=np.float32)


class SeedTableTrainer(GrowingTrainer):
    """A fake whose score on each seed the reward itself sets: it 'learns' the constant
    action the reward gives an observation filled with the training seed, so a test writes
    down what each reward scores on seed 0, 1, 2, ... (a lucky first seed, a steady one)."""

    resumable: ClassVar[bool] = False

    def train(self, task: Any, load_reward: Any, budget: Budget, report: Any) -> TrainingReport:
        fn = load_reward()
        obs = np.full((2, 3), float(budget.seed))
        total, _ = fn(obs, np.zeros((2, 1)), obs, {})
        policy = {"policy/torque": np.array([float(np.mean(total))], dtype=np.float32)}
        report(CheckpointStats(step=budget.timesteps, components={}), policy)
        return TrainingReport(steps=budget.timesteps, seconds=0.01, components=["r"])


def seed_table(*scores: float) -> str:
    """A reward whose :class:`SeedTableTrainer` training scores ``scores[s]`` on seed ``s``."""
    return (
        "import numpy as np\n\n\ndef compute_reward(obs, action, next_obs, info):\n"
        f"    table = np.array({list(scores)!r})\n"
        f"    s = np.clip(obs[:, 0], 0, {len(scores) - 1}).astype(np.int64)\n"
        "    r = table[s]\n"
        '    return r, {"r": r}\n'
    )


class PoseTrainer(FakeTrainer):
    """A fake for a MuJoCo body (Hopper): it 'learns' one constant action, the same on every
    joint, that the reward sets (its mean on an observation of ones, scaled into [-1, 1]),
    reached over training and shifted a little by the seed, so rewards differ in how the
    body falls and how far it gets, and a reward's score varies from seed to seed. It
    reports each component's statistics on random observations, and an episode return and
    length that grow with training."""

    def train(self, task: Any, load_reward: Any, budget: Budget, report: Any) -> TrainingReport:
        given = load_reward()

        def fn(obs: np.ndarray, act: np.ndarray, nxt: np.ndarray, info: Any) -> Any:
            return given(obs, act, nxt, info) if given else (np.ones(len(obs)), {})

        rng = np.random.default_rng(budget.seed)
        ones = np.ones((2, 11))
        total, _ = fn(ones, np.zeros((2, 3)), ones, {})
        target = float(np.tanh(np.mean(total) / 4))
        shift = 0.04 * ((budget.seed % 3) - 1)
        names: list[str] = []
        for k in range(1, budget.checkpoints + 1):
            obs = rng.normal(size=(2, 11))
            _, comps = fn(obs, np.zeros((2, 3)), obs, {})
            names = sorted(comps)
            stats = {
                c: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))}
                for c, v in comps.items()
            }
            step = k * budget.timesteps // budget.checkpoints
            length = 20.0 * k
            report(
                CheckpointStats(
                    step=step,
                    components=stats,
                    episodes=4,
                    episode_length=length,
                    reward_return=length * float(np.mean(total)) * (1 + k / 4),
                ),
                {
                    "policy/pose": np.array(
                        [target * k / budget.checkpoints + shift], dtype=np.float32
                    )
                },
            )
        return TrainingReport(steps=budget.timesteps, seconds=0.01, components=names)

    def policy(self, task: Any, arrays: dict[str, np.ndarray]) -> Any:
        pose = float(np.clip(arrays["policy/pose"][0], -1, 1))
        return lambda obs: np.full((len(obs), 3), pose, dtype=np.float32)


class RestartingTrainer(GrowingTrainer):
    """The growing fake as a trainer that cannot continue: every round starts from zero."""

    resumable: ClassVar[bool] = False


MP4 = b"\x00\x00\x00\x18ftypisom" + bytes(64)
"""Bytes that pass the orchestrator's check of a video."""


def forgeries(own: int, sibling: int) -> list[tuple[str, dict[str, Any], bytes | None]]:
    """The frames a hostile group member sends through the channel it shares with its
    siblings (kind, data, artefact): in a sibling's name (a fine policy at a step past any
    real one, and a NaN one), in its own (a score, an integer policy), with member indexes
    that are not its group's, and videos and states that a training job has no say over."""
    from safetensors.numpy import save

    fine = save({"policy/torque": np.array([2.0], dtype=np.float32)})
    nan = save({"policy/torque": np.array([np.nan], dtype=np.float32)})
    ints = save({"policy/torque": np.array([2], dtype=np.int64)})
    frames: list[tuple[str, dict[str, Any], bytes | None]] = [
        ("checkpoint", {"step": 10**9, "components": {}, "member": sibling}, fine),
        ("checkpoint", {"step": 10**9 + 1, "components": {}, "member": sibling}, nan),
        ("checkpoint", {"step": 10**9, "components": {}, "fitness": 1e9, "member": own}, fine),
        ("checkpoint", {"step": 10**9, "components": {}, "member": own}, ints),
    ]
    for member in (2, -1, True, "0", None, 0.0):
        frames.append(("checkpoint", {"step": 10**9, "components": {}, "member": member}, fine))
    frames.append(("checkpoint", {"step": 10**9, "components": {}}, fine))
    for member in (own, sibling):
        frames.append(("video", {"step": 256, "member": member}, MP4))
    frames.append(("state", {"step": 1024, "member": sibling}, fine))
    return frames


class GroupTrainer(GrowingTrainer):
    """The growing fake training two rewards in one process (``train_group``), one after
    the other. A member whose reward has a component named ``forge`` plays a hostile
    sibling that took over the process: once trained, it sends :func:`forgeries` through
    the channel the members' reports share."""

    group: ClassVar[int] = 2

    def train_group(
        self, task: Any, load_rewards: Sequence[Any], budget: Budget, reports: Sequence[Any]
    ) -> list[TrainingReport | BaseException]:
        outcomes: list[TrainingReport | BaseException] = []
        for i, (load, report) in enumerate(zip(load_rewards, reports, strict=True)):
            try:
                outcomes.append(self.train(task, load, budget, report))
            except Exception as e:
                outcomes.append(e)
                continue
            ones = np.ones((2, 3))
            if "forge" in load()(ones, np.zeros((2, 1)), ones, {})[1]:
                cells = [c.cell_contents for c in report.__closure__]
                channel = next(c for c in cells if hasattr(c, "send"))
                for kind, data, artefact in forgeries(own=i, sibling=1 - i):
                    channel.send(kind, data, artefact)
        return outcomes


def mean_action(episode: Any) -> float:
    """A fitness for the growing fake: the mean action (its constant torque)."""
    return float(np.mean(episode.actions))


class _Collect:
    """The channel an in-process job writes to."""

    def __init__(self, key: str, on_event: OnEvent | None) -> None:
        self.key, self.on_event = key, on_event
        self.result: dict[str, Any] | None = None
        self.error: BaseException | None = None
        """What the orchestrator's own handler raised (a full disk): it stops the run."""

    def send(self, kind: str, data: dict[str, Any], artefact: bytes | None = None) -> None:
        if kind == "result":
            self.result = data
        elif self.on_event is not None:
            try:
                self.on_event(JobEvent(self.key, kind, data, artefact))
            except BaseException as e:
                self.error = e
                raise


class InlineExecutor(Executor):
    """Runs every job in this process, one after another: no sandbox at all."""

    def __init__(self, workers: int = 1, allow_weak_sandbox: bool = False) -> None:
        self.jobs: list[Job] = []

    def describe(self) -> list[str]:
        return ["inline: no isolation (test double)"]

    def run(self, jobs: Sequence[Job], on_event: OnEvent | None = None) -> dict[str, JobOutput]:
        out = {}
        for job in jobs:
            self.jobs.append(job)
            channel = _Collect(job.key, on_event)
            try:
                run_job(job.spec, channel, lambda: None)  # type: ignore[arg-type]
            except Exception as e:
                channel.result = failure("job", e)
            if channel.error is not None:  # the orchestrator's own, not the job's: as a
                raise channel.error  # real executor, stop (the job caught it in passing)
            out[job.key] = JobOutput(channel.result, None if channel.result else "no result")
        return out


class ScriptedSelector(Selector):
    """Ranks candidates by a fixed preference: the highest candidate index first."""

    calls: ClassVar[list[list[str]]] = []
    annotator = None

    def rank(self, trained: Sequence[Trained]) -> Ranking:
        ScriptedSelector.calls.append([t.id for t in trained])
        ordered = sorted(
            trained, key=lambda t: (t.candidate.iteration, t.candidate.index), reverse=True
        )
        return [[t.id] for t in ordered]


def register() -> None:
    TRAINERS.register("fake", FakeTrainer)
    TRAINERS.register("growing", GrowingTrainer)
    TRAINERS.register("restarting", RestartingTrainer)
    TRAINERS.register("seed_table", SeedTableTrainer)
    TRAINERS.register("pose", PoseTrainer)
    TRAINERS.register("group", GroupTrainer)
    EXECUTORS.register("inline", InlineExecutor)
    SELECTORS.register("scripted", ScriptedSelector)
