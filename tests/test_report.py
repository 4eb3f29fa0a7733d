"""The HTML report in a real browser: Debian's Chromium (installed with apt where it is missing),
driven by playwright, opens every section of the shared tiny run's report and every result in it."""

from __future__ import annotations

import re
import shutil

import pytest
from apt import install_with_apt
from conftest import run_snakemake

playwright_api = pytest.importorskip("playwright.sync_api")

MENU_ENTRY = "nav a.transition-all"  # the sidebar's categories, subcategories and menu items
MENU_ITEMS = {"Workflow", "Statistics", "About"}


def chromium_executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-headless-shell")


@pytest.fixture(scope="module")
def chromium() -> str:
    if chromium_executable() is None:
        reason = install_with_apt("chromium")
        if reason:
            pytest.skip(f"no Chromium here and {reason}")
    return chromium_executable()


@pytest.fixture(scope="module")
def report(tiny_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    result = run_snakemake(tiny_run, "--report", str(path), "--configfile", str(tiny_run / "config.yaml"))
    assert result.returncode == 0, result.stdout[-3000:]
    return path


def menu_entries(page) -> list[str]:
    return [text.strip() for text in page.locator(MENU_ENTRY).all_inner_texts() if text.strip()]


def broken_images(frame) -> list[str]:
    """Images of a page or frame that did not load."""
    return frame.evaluate("() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(0, 80))")


def open_result(page, row) -> list[str]:
    """Show one result (its eye icon) and return what is wrong with it: broken images, or nothing shown."""
    row.locator("a").first.click()
    page.wait_for_timeout(150)
    problems = broken_images(page)
    frames = [frame for frame in page.frames if frame != page.main_frame]
    for frame in frames:
        frame.wait_for_load_state()
        problems += broken_images(frame)
        if not frame.evaluate("() => document.body && document.body.innerText.trim().length > 0"):
            problems.append(f"empty frame {frame.url[:60]}")
    if not frames and page.locator("main img, img[src^='data:image/png']").count() == 0:
        problems.append("neither an image nor a page is shown")
    return problems


def test_every_report_section_shows_its_results(chromium, report):
    problems: list[str] = []
    with playwright_api.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}") if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.goto(report.as_uri())
        page.wait_for_load_state("networkidle")
        landing = page.inner_text("body")
        assert "hybridwing-vit-tiny" in landing and "randomly initialised" in landing, "the landing page names the backbone and its weights"
        categories = [entry for entry in menu_entries(page) if entry not in MENU_ITEMS]
        assert [c.split(".")[0] for c in categories] == ["1", "2", "3", "4", "5"], categories
        opened = 0
        for category in categories:
            page.goto(report.as_uri())
            page.get_by_text(category, exact=True).click()
            subcategories = [entry for entry in menu_entries(page) if entry not in MENU_ITEMS] if page.locator("tbody tr").count() == 0 else [""]
            assert subcategories, f"{category}: an empty section"
            for subcategory in subcategories:
                if subcategory:
                    page.goto(report.as_uri())
                    page.get_by_text(category, exact=True).click()
                    page.locator(MENU_ENTRY, has_text=re.compile(f"^{re.escape(subcategory)}$")).first.click()
                rows = page.locator("tbody tr")
                assert rows.count() > 0, f"{category} / {subcategory}: an empty section"
                for index in range(rows.count()):
                    found = open_result(page, rows.nth(index))
                    problems += [f"{category} / {subcategory} / row {index + 1}: {problem}" for problem in found]
                    opened += 1
        browser.close()
    assert opened >= 20, f"only {opened} results opened"
    assert not problems, "\n".join(problems)
