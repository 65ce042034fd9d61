"""The closing comparison: the run's best reward, the task's human reward and its sparse
reward (the score's own signal), trained with the same budget on fresh seeds (never the
search's) and evaluated on more episodes; the human-normalised score and a verdict."""

from __future__ import annotations

from dataclasses import asdict

from eureka_lab.core.statistics import ALPHA, Estimate, compare
from eureka_lab.loop.journal import Journal
from eureka_lab.loop.selection import Selection
from eureka_lab.loop.training import Training, Trainings
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import BestVsHuman, Candidate, FinalRow, RunSummary, Test, Verdict
from eureka_lab.runs.records import Usage as UsageRecord
from eureka_lab.runs.scores import Scores, Trained
from eureka_lab.runs.store import final_id
from eureka_lab.task.model import Task

REWARDS = ("best", "human", "sparse")


class FinalComparison:
    """Best against human against sparse, on the closing comparison's seeds."""

    def __init__(
        self,
        journal: Journal,
        task: Task,
        config: LoopConfig,
        trainings: Trainings,
        selection: Selection,
        scores: Scores,
    ) -> None:
        self.journal = journal
        self.scores = scores
        self.store = journal.store
        self.task = task
        self.config = config
        self.trainings = trainings
        self.selection = selection

    def run(self, best: Trained) -> RunSummary:
        """Train best, human and sparse rewards with the same budget and seeds; compare."""
        codes = {
            "best": self.store.reward_code(best.id),
            "human": self.task.reward_source(self.task.human_reward),
            "sparse": self.task.reward_source(self.task.sparse_reward),
        }
        seeds = self.config.final_seed_list
        trainings = []
        for name, code in codes.items():
            for seed in seeds:
                key = final_id(name, seed)
                if self.store.reward_code(key) != code:
                    # The best changed since an earlier comparison (a resumed run): redo it.
                    self.store.clear_training(key)
                trainings.append(Training(key, code, seed))
        if any(self.store.result(t.key) is None for t in trainings):
            self.journal.emit("final_started", jobs=len(trainings), seeds=seeds)
        episodes = self.task.eval_episodes * self.config.final_eval_factor
        self.trainings.train(
            trainings, episodes=episodes, videos={final_id(name, seeds[0]) for name in codes}
        )
        rows = {name: self._row(name, codes[name], seeds) for name in codes}
        best_vs_human = test(rows["best"], rows["human"])
        human_vs_sparse = test(rows["human"], rows["sparse"])
        best_vs_sparse = test(rows["best"], rows["sparse"])
        b, h, s = (rows[k].fitness for k in REWARDS)
        score = None
        if (
            b is not None
            and h is not None
            and s is not None
            and human_vs_sparse is not None
            and human_vs_sparse.difference > 0
            and human_vs_sparse.p is not None
            and human_vs_sparse.p < ALPHA
        ):
            score = (b - s) / abs(h - s)
        search = self.scores.estimate(best.id)
        summary = RunSummary(
            verdict=self._judged(seeds[0]),
            task=self.task.name,
            best=best.id,
            best_search_fitness=search.mean if search else best.result.fitness,
            best_search_std=search.std if search else None,
            best_search_seeds=search.seeds if search else None,
            best_search_interval=list(search.interval) if search and search.interval else None,
            seeds=seeds,
            timesteps=self.trainings.timesteps,
            final=rows,
            normalized_score=score,
            best_vs_human=verdict(best_vs_human),
            best_vs_human_test=best_vs_human,
            human_vs_sparse_test=human_vs_sparse,
            best_vs_sparse_test=best_vs_sparse,
            eval_episodes=episodes,
            preference_queries=len(self.store.rankings()),
            usage=UsageRecord(**asdict(self.store.usage())),
        )
        self.store.save_summary(summary)
        return summary

    def _row(self, name: str, code: str | None, seeds: list[int]) -> FinalRow:
        results = [self.store.result(final_id(name, s)) for s in seeds]
        ok = [r for r in results if r and r.status == "trained" and r.fitness is not None]
        rates = [r.success_rate for r in ok if r.success_rate is not None]
        scores = [r.fitness for r in ok if r.fitness is not None]
        estimate = Estimate(tuple(scores), episodes=0) if scores else None
        return FinalRow(
            fitness=estimate.mean if estimate else None,
            std=estimate.std if estimate else None,
            interval=list(estimate.interval) if estimate and estimate.interval else None,
            success_rate=sum(rates) / len(rates) if rates else None,
            per_seed=[r.fitness if r else None for r in results],
            failed=[r.reason for r in results if r and r.status != "trained"],
            reward="env" if code is None else f"final/{name}",
        )

    def _judged(self, seed: int) -> Verdict | None:
        """A person's judgement of the final best against the human reward, from their
        rollout videos, shown blind (only where the selector records a person's
        rankings)."""
        if not self.selection.selector.records_itself:
            return None
        it = self.config.iterations
        best = self._trained(final_id("best", seed), 0, it)
        human = self._trained(final_id("human", seed), 1, it)
        if best is None or human is None:
            return None
        return self.selection.judge(best, human, it)

    def _trained(self, key: str, index: int, iteration: int) -> Trained | None:
        result = self.store.result(key)
        if result is None or result.status != "trained":
            return None
        cand = Candidate(
            id=key, iteration=iteration, index=index, status="valid", components=result.components
        )
        return Trained(cand, result, self.store.checkpoints(key))


def test(a: FinalRow, b: FinalRow) -> Test | None:
    """Welch's t-test of reward ``a`` against ``b`` over the final seeds (None where either
    has no score)."""
    xa = [x for x in a.per_seed if x is not None]
    xb = [x for x in b.per_seed if x is not None]
    if not xa or not xb:
        return None
    c = compare(xa, xb)
    return Test(
        test=c.test,
        difference=c.difference,
        p=c.p,
        interval=None if c.interval is None else list(c.interval),
    )


def verdict(t: Test | None) -> BestVsHuman | None:
    """What the test says of the first reward against the second."""
    if t is None or t.p is None:  # one seed on a side: no test, no verdict
        return None
    if t.p >= ALPHA:
        return "within noise"
    return "better" if t.difference > 0 else "worse"
