"""The red team's book-keeping for issue 18: every class it names has attacks in the suite, and
the suite tries at least 60 (no runs here: the attacks themselves run in ``test_redteam``)."""

from __future__ import annotations

from tests.redteam.attacks import ATTACKS
from tests.redteam.attacks_boundary import ATTACKS as BOUNDARY


def test_every_class_of_the_fourth_round_has_its_siblings_in_the_suite():
    classes = {"predictions the scorer cannot take": 8, "candidate data kills the driver": 6,
               "the code reviewed is not the code trained": 5, "terminal injection": 3,
               "outputs on the host": 1, "a failing watcher dies silently": 1}
    for what, at_least in classes.items():
        found = [a.name for a in BOUNDARY if a.what.startswith(what)]
        assert len(found) >= at_least, f"{what}: {found}"
    assert all(a in ATTACKS for a in BOUNDARY), "registered in attacks.ATTACKS"
    assert len({a.name for a in ATTACKS}) == len(ATTACKS) >= 60
