"""The language filter that sets up the comparison's corpus (``prox_spark.language``), on real text."""

from __future__ import annotations

import pytest

from prox_spark.config import ConfigError, load_config
from prox_spark.language import language_filter

ENGLISH = "The council voted on Tuesday to close the old library and to build a new one near the station."
GERMAN = "Der Gemeinderat hat am Dienstag beschlossen, die alte Bibliothek zu schließen und eine neue zu bauen."
FRENCH = "Le conseil municipal a décidé mardi de fermer l'ancienne bibliothèque et d'en construire une nouvelle."


def test_an_empty_list_means_no_filter():
    assert language_filter([]) is None
    assert language_filter(["", " "]) is None


def test_keeps_only_the_languages_asked_for():
    english = language_filter(["en"])
    assert english(ENGLISH) and not english(GERMAN) and not english(FRENCH)
    either = language_filter([" EN", "de "])  # codes are trimmed and lower-cased
    assert either(ENGLISH) and either(GERMAN) and not either(FRENCH)


def test_the_compare_config_takes_a_list_of_codes():
    from prox_spark.jobs.compare import CompareConfig

    assert load_config("conf/compare_local.yaml", cls=CompareConfig).corpus.languages == ("en",)
    both = load_config("conf/compare_local.yaml", ["corpus.languages=[en, de]"], cls=CompareConfig)
    assert both.corpus.languages == ("en", "de")
    assert load_config("conf/compare_local.yaml", ["corpus.languages=[]"], cls=CompareConfig).corpus.languages == ()
    with pytest.raises(ConfigError, match="corpus.languages: expected a list of strings"):
        load_config("conf/compare_local.yaml", ["corpus.languages=en"], cls=CompareConfig)
