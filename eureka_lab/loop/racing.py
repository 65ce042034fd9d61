"""Racing on fresh seeds: an iteration's best rewards and the run's best get more training
seeds until the ranking between them is decided beyond noise, or the seeds run out.

One training seed is one draw from a wide distribution: the same reward can score 0.3 on
one seed and 4.7 on the next. So the iteration's top rewards (by their first seed) and the
incumbent race: each round trains every reward still in on one more seed (all of them on
the same seed, in one process where the trainer trains groups), and a reward that the
leader beats beyond noise (Welch's t-test, p below :data:`~eureka_lab.core.statistics.ALPHA`)
is out. The winner is the highest mean over the same seeds: the incumbent keeps its place
unless a challenger beats it on equal footing. Successive halving, where on, first cuts the
iteration's candidates over training steps; its survivor races. Selection by a person or
an oracle does not race: their preference decides.
"""

from __future__ import annotations

from eureka_lab.core.statistics import compare
from eureka_lab.loop.journal import Journal
from eureka_lab.loop.training import Training, Trainings
from eureka_lab.runs.config import LoopConfig
from eureka_lab.runs.records import Entrant, Race
from eureka_lab.runs.scores import Scores, Trained
from eureka_lab.runs.store import seed_id


class Racing:
    """Races rewards on fresh seeds."""

    def __init__(
        self, journal: Journal, config: LoopConfig, trainings: Trainings, scores: Scores
    ) -> None:
        self.journal = journal
        self.store = journal.store
        self.config = config
        self.trainings = trainings
        self.scores = scores

    @property
    def seeds(self) -> list[int]:
        """The seeds a race may use: the search's, then the next ones."""
        return [self.config.seed + k for k in range(self.config.race_seeds)]

    def entrants(self, ranked: list[Trained], incumbent: Trained | None) -> list[Trained]:
        """The iteration's top ``race_size`` rewards that trained on the whole budget (by
        their first seed), and the run's best."""
        full = [t for t in ranked if t.result.stopped_at is None]
        entrants = full[: self.config.race_size]
        if incumbent is not None and incumbent.id not in {t.id for t in entrants}:
            entrants.append(incumbent)
        return entrants

    def run(self, it: int, entrants: list[Trained], incumbent: Trained | None) -> Race:
        """Race ``entrants`` and record the race (resumed rounds are not trained again)."""
        seeds = self.seeds
        out: dict[str, tuple[int | None, float | None]] = {}
        """Per reward: after how many seeds it went out (None: still in), and the p-value
        of the leader against it."""
        alive = [t.id for t in entrants]
        self.journal.emit("race_started", iteration=it, entrants=alive, seeds=seeds)
        n = 1
        while len(alive) > 1 and n < len(seeds):
            n += 1
            seed = seeds[n - 1]
            todo = [
                Training(seed_id(cid, seed), self.store.reward_code(cid), seed)
                for cid in alive
                if seed not in self.scores.seed_results(cid)
            ]
            self.trainings.train(todo, videos=set())
            values = {cid: self._values(cid, seeds[:n]) for cid in alive}
            leader = max(alive, key=lambda cid: _mean(values[cid]))
            for cid in list(alive):
                if cid == leader:
                    continue
                test = compare(values[leader], values[cid])
                if test.decided and test.difference > 0:
                    alive.remove(cid)
                    out[cid] = (n, test.p)
            self.journal.emit("race_round", iteration=it, seeds=n, left=list(alive))
        common = seeds[:n]
        values = {t.id: self._values(t.id, common) for t in entrants}
        keeper = None if incumbent is None else incumbent.id
        winner = max(alive, key=lambda cid: (_mean(values[cid]), cid == keeper))
        for cid in alive:  # undecided against the winner: how far from decided
            if cid != winner:
                out[cid] = (None, compare(values[winner], values[cid]).p)
        race = Race(
            seeds=common,
            entrants=[
                Entrant(
                    id=t.id,
                    scores=values[t.id],
                    out_after=out.get(t.id, (None, None))[0],
                    p=out.get(t.id, (None, None))[1],
                )
                for t in entrants
            ],
            winner=winner,
            incumbent=None if incumbent is None else incumbent.id,
            decided=len(alive) == 1,
        )
        self.journal.emit(
            "race_finished",
            iteration=it,
            winner=winner,
            decided=race.decided,
            seeds=len(common),
            incumbent_kept=incumbent is not None and winner == incumbent.id,
        )
        return race

    def _values(self, cid: str, seeds: list[int]) -> list[float]:
        results = self.scores.seed_results(cid)
        return [float(r.fitness) for s in seeds if (r := results.get(s)) and r.fitness is not None]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("-inf")
