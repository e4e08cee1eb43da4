"""Every page at 1280 px and at phone width: within the screen (tables scroll sideways in
their own box), headed, readable (WCAG AA contrast), reachable by keyboard (skip link),
and quiet in the console."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import Site, layout_problems


def _pages(site: Site) -> list[tuple[str, str]]:
    table = site.server.http.get(
        "/apis/v1/namespaces/default/experiments/quad-small/trialtable"
    ).json()
    trial = table["trials"]["name"][0]
    return [
        ("/", "#experiments tbody tr[data-key]"),
        ("/experiments/default/quad", "#plot-parcoords[data-drawn] .pc-axis"),
        (f"/experiments/default/quad-small/trials/{trial}", "#plot-curves .main-svg"),
        ("/compare?e=default/quad&e=default/quad-small", "#compare-table .vt-body .vt-row"),
        ("/create", "#create-yaml"),
    ]


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)])
def test_every_page_fits_the_screen_and_reads(
    browser: Any, site: Site, width: int, height: int
) -> None:
    context = browser.new_context(
        viewport={"width": width, "height": height}, is_mobile=width < 500, has_touch=width < 500
    )
    errors: list[str] = []
    problems: list[str] = []
    try:
        pg = context.new_page()
        pg.set_default_timeout(20_000)
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        for path, ready in _pages(site):
            pg.goto(f"{site.url}{path}")
            pg.wait_for_selector(ready)
            problems += layout_problems(pg)
        # The trial table scrolls sideways inside its own box on a phone.
        pg.goto(f"{site.url}/experiments/default/quad")
        pg.wait_for_selector("#trials .vt-body .vt-row")
        if width < 500:
            assert pg.evaluate(
                "() => document.querySelector('#trials .vt-scroll').scrollWidth > 390"
            )
        # plotly's toolbar sat on the legends at phone width: there is none there.
        pg.wait_for_selector(".js-plotly-plot .main-svg")
        bars = pg.locator(".modebar-container .modebar").count()
        assert (bars == 0) if width < 500 else (bars > 0), (width, bars)
        # Keyboard: the first Tab reaches "Skip to content", which moves the focus to the view.
        pg.keyboard.press("Tab")
        assert pg.evaluate("() => document.activeElement.textContent") == "Skip to content"
        assert pg.locator("a.skip").bounding_box()["x"] >= 0  # shown while focused
        pg.keyboard.press("Enter")
        assert pg.evaluate("() => document.activeElement.id") == "main"
        pg.keyboard.press("Tab")
        assert pg.evaluate("() => document.querySelector('main').contains(document.activeElement)")
        assert pg.locator("#trials .vt-body .vt-row").count() > 0  # the view was not redrawn away
    finally:
        context.close()
    assert problems == []
    assert errors == []
