import pytest

from actlab.registry import DuplicateNameError, Registry, UnknownNameError


@pytest.fixture
def registry() -> Registry:
    r: Registry = Registry("widget")
    r.add("relu", "R", aliases=("Rectifier",))
    r.add("leaky_relu", "L")
    r.add("tanh", "T")
    return r


def test_lookup_is_case_insensitive_and_resolves_aliases(registry: Registry) -> None:
    assert registry.get("ReLU") == "R"
    assert registry.get("RECTIFIER") == "R"
    assert registry.canonical(" rectifier ") == "relu"
    assert "Tanh" in registry
    assert "sigmoid" not in registry


def test_duplicate_names_and_aliases_are_errors(registry: Registry) -> None:
    with pytest.raises(DuplicateNameError, match="already registered"):
        registry.add("RELU", "again")
    with pytest.raises(DuplicateNameError):
        registry.add("other", "x", aliases=("rectifier",))


def test_unknown_name_lists_choices_and_suggests(registry: Registry) -> None:
    with pytest.raises(UnknownNameError) as info:
        registry.get("relu6x")
    message = str(info.value)
    assert "unknown widget 'relu6x'" in message
    assert "Did you mean 'relu'" in message
    assert "leaky_relu, relu, tanh" in message


def test_list_with_wildcards(registry: Registry) -> None:
    assert registry.list() == ["leaky_relu", "relu", "tanh"]
    assert registry.list("*RELU*") == ["leaky_relu", "relu"]
    assert registry.list("t*") == ["tanh"]
    assert len(registry) == 3
