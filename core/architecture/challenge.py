"""The challenge every step is judged against, defined once."""

from __future__ import annotations

from dataclasses import dataclass

from core.words import counted


@dataclass(frozen=True)
class Challenge:
    max_params: int = 10_000  # strictly fewer
    min_acc: float = 99.4  # % test accuracy, in each of the last epochs
    last_epochs: int = 3
    max_epochs: int = 15
    # seeds a setting must hold on before it counts, and before two settings are said to differ by
    # more than their seeds do: one lucky seed proves nothing
    min_seeds: int = 3

    def describe(self) -> str:
        return (f"fewer than {self.max_params:,} parameters, at least {self.min_acc} % test accuracy in each of "
                f"the last {self.last_epochs} epochs, trained in at most {self.max_epochs} epochs")

    def params_ok(self, params: int) -> bool:
        return params < self.max_params

    def holds(self, min_last: float | None, margin: float = 0.0) -> bool:
        """Did a run hold the line: its lowest test accuracy of the last epochs (None when it ran fewer)
        at least the challenge's (plus `margin`)? Every 'held' in the project is this."""
        return min_last is not None and min_last >= self.min_acc + margin

    def meets(self, params: int, min_last: float | None, epochs_planned: int) -> bool:
        """The rule itself, on a run's figures (`min_last`: the lowest of its last epochs, None when
        it ran fewer)."""
        return self.params_ok(params) and epochs_planned <= self.max_epochs and self.holds(min_last)

    def verdict(self, params: int, test_accs: list[float], epochs_planned: int) -> tuple[bool, str]:
        """Does a run meet the challenge? (passed, one-line explanation)."""
        n = self.last_epochs
        last = test_accs[-n:]
        problems = []
        if not self.params_ok(params):
            problems.append(f"{params:,} parameters (needs < {self.max_params:,})")
        if epochs_planned > self.max_epochs:
            problems.append(f"{epochs_planned} epochs (needs <= {self.max_epochs})")
        if len(last) < n:
            problems.append(f"only {counted(len(test_accs), 'epoch')} run (needs the last {n})")
        elif not self.holds(min(last)):
            problems.append(f"min of last {n} test accuracies {min(last):.2f} % (needs >= {self.min_acc} %)")
        if problems:
            return False, "Not met: " + "; ".join(problems)
        return True, f"Met: {params:,} parameters, last {n} test accuracies {', '.join(f'{a:.2f}' for a in last)} %"


CHALLENGE = Challenge()


def min_last(test_accs: list[float], n: int = CHALLENGE.last_epochs) -> float | None:
    """The challenge's figure of merit: the lowest of the last n test accuracies."""
    return min(test_accs[-n:]) if len(test_accs) >= n else None
