"""The documentation: the configuration reference is the schema's, and every page is in the site."""

from __future__ import annotations

import yaml

from hybridwing.config_reference import PAGE, REPO, SCHEMA, reference


def test_the_configuration_reference_is_generated_from_the_schema():
    page = PAGE.read_text()
    assert page == reference(yaml.safe_load(SCHEMA.read_text())), "run python -m hybridwing.config_reference"
    schema = yaml.safe_load(SCHEMA.read_text())
    assert "| `score.explain` | integer | `8` | ≥ 0 |" in page
    assert len(schema["properties"]) == page.count("\n## `")


def test_every_page_is_in_the_sites_navigation():
    def pages(entries) -> set[str]:
        found = set()
        for entry in entries:
            value = entry if isinstance(entry, str) else next(iter(entry.values()))
            found |= pages(value) if isinstance(value, list) else {value}
        return found

    navigation = pages(yaml.safe_load((REPO / "mkdocs.yml").read_text())["nav"])
    on_disk = {str(path.relative_to(REPO / "docs")) for path in (REPO / "docs").rglob("*.md")}
    assert navigation == on_disk
