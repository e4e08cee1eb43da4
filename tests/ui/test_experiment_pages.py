"""What a person sees on the experiment pages: lists filter, tables sort and filter,
plots hold the right number of points, brushing filters rows, the page follows a running
experiment without reloading, nothing is logged to the console as an error."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.ui.conftest import Console, Site, experiment, wait_finished


def _succeeded(site: Site, name: str) -> int:
    return int(site.experiments[name]["status"]["trialsSucceeded"])


def _column(page: Any, key: str) -> list[str]:
    """The texts of one column of the trial table's rendered rows, top to bottom."""
    return page.evaluate(
        """(key) => {
            const head = [...document.querySelectorAll('#trials .vt-head [role=columnheader]')];
            const at = head.findIndex((h) => h.querySelector('button').dataset.key === key);
            const rows = [...document.querySelectorAll('#trials .vt-body .vt-row')]
                .filter((r) => !r.hidden)
                .sort((a, b) => Number(a.getAttribute('aria-rowindex')) - Number(b.getAttribute('aria-rowindex')));
            return rows.map((r) => r.children[at].textContent);
        }""",
        key,
    )


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _open_experiment(page: Any, site: Site, name: str, ns: str = "default") -> None:
    page.goto(f"{site.url}/experiments/{ns}/{name}")
    page.wait_for_selector("#trials .vt-body .vt-row")
    page.wait_for_function("() => document.querySelector('#plot-parcoords')?.dataset.drawn")


def test_the_list_filters_and_selects_experiments_to_compare(page: Any, site: Site) -> None:
    page.goto(site.url)
    page.wait_for_selector("#experiments tbody tr[data-key]")
    rows = page.locator("#experiments tbody tr[data-key]")
    everything = {
        f"{i['namespace']}/{i['name']}"
        for i in site.server.http.get("/apis/v1/experimentsummaries").json()["items"]
    }
    assert {"default/quad", "default/quad-small", "team-b/other"} <= everything
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.key)")) == everything
    page.select_option("#f-ns", "team-b")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.key)") == ["team-b/other"]
    page.select_option("#f-ns", index=0)
    page.fill("#f-text", "small")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.key)") == ["default/quad-small"]
    page.fill("#f-text", "")
    page.select_option("#f-phase", "Failed")
    assert rows.count() == 0
    page.select_option("#f-phase", "Succeeded")
    assert {"default/quad", "default/quad-small", "team-b/other"} <= set(
        rows.evaluate_all("rs => rs.map(r => r.dataset.key)")
    )
    # Progress and best value as formatted numbers.
    quad = page.locator('tr[data-key="default/quad"]')
    assert "24 / 24" in quad.inner_text()
    assert re.search(r"\d\.\d+", quad.locator("td.num").first.inner_text())
    # Select two, compare.
    compare = page.locator("#compare")
    assert compare.is_disabled()
    page.check('tr[data-key="default/quad"] input[type=checkbox]')
    page.check('tr[data-key="default/quad-small"] input[type=checkbox]')
    assert compare.inner_text() == "Compare 2 selected"
    compare.click()
    page.wait_for_url(re.compile(r"/compare\?"))
    page.wait_for_function(
        "() => document.querySelector('#plot-compare-history')?.data?.length === 4"
    )
    assert page.locator("#compare-best section").count() == 2
    # History overlay: each experiment's succeeded trials as points.
    counts = page.evaluate(
        "() => document.querySelector('#plot-compare-history')?.data.filter((t) => t.mode === 'markers').map((t) => t.x.length)"
    )
    assert counts == [_succeeded(site, "quad"), _succeeded(site, "quad-small")]
    # The joint table holds every trial of both, over their shared parameters.
    page.wait_for_selector("#compare-table .vt-body .vt-row")
    assert page.get_attribute("#compare-table .vt", "aria-rowcount") == str(24 + 6 + 1)
    assert "Shared parameters: x, opt" in page.inner_text("#shared-params")


def test_compare_keeps_each_objective_apart_and_survives_a_missing_experiment(
    page: Any, site: Site, console: Console
) -> None:
    # A minimized loss and a maximized acc: one axis titled "loss" held both, and the
    # table ranked every trial by raw value in the first experiment's direction.
    page.goto(f"{site.url}/compare?e=default/quad-small&e=default/acc-max")
    page.wait_for_function(
        "() => document.querySelector('#plot-compare-history')?.data?.length === 4"
    )
    titles = page.evaluate(
        """() => { const l = document.querySelector('#plot-compare-history').layout;
                   return [l.yaxis.title.text, l.yaxis2.title.text, l.grid.rows]; }"""
    )
    assert titles == ["loss (minimize)", "acc (maximize)", 2]
    edf_axes = page.evaluate(
        """() => { const l = document.querySelector('#plot-compare-edf').layout;
                   return [l.xaxis.title.text, l.xaxis2.title.text]; }"""
    )
    assert edf_axes == ["loss", "acc"]
    page.wait_for_selector("#compare-table .vt-body .vt-row")
    header = page.locator("#compare-table [role=columnheader][aria-sort=ascending] button")
    assert header.get_attribute("data-key") == "rank"
    assert "each trial's rank is within its own experiment" in page.inner_text("#shared-params")
    # One experiment that cannot be read: said on its card, the other still compared.
    console.allow("/experiments/nope/")  # the browser logs the 404 it was answered
    page.goto(f"{site.url}/compare?e=default/quad-small&e=default/nope")
    page.wait_for_function(
        "() => document.querySelector('#plot-compare-history')?.data?.length === 2"
    )
    cards = page.locator("#compare-best section")
    assert cards.count() == 2
    assert "not found" in cards.nth(1).locator(".error").inner_text()
    assert page.get_attribute("#compare-table .vt", "aria-rowcount") == str(6 + 1)
    # The same experiment twice is one experiment (every row was shown twice).
    page.goto(f"{site.url}/compare?e=default/quad-small&e=default/quad-small")
    page.wait_for_selector("text=Select two or more experiments")


def test_the_trial_table_sorts_filters_and_chooses_columns(page: Any, site: Site) -> None:
    _open_experiment(page, site, "quad")
    assert page.inner_text("#shown-count") == "24 of 24 shown"
    # Sorted by the objective, best first (minimize).
    losses = [_number(t) for t in _column(page, "m:loss")]
    assert losses == sorted(losses) and len(losses) == 24
    best = page.inner_text("#best a")
    assert _column(page, "name")[0] == best
    # Sort by x, then by x descending.
    page.click('#trials button[data-key="p:x"]')
    xs = [_number(t) for t in _column(page, "p:x")]
    assert xs == sorted(xs)
    assert (
        page.get_attribute('#trials [role=columnheader]:has(button[data-key="p:x"])', "aria-sort")
        == "ascending"
    )
    page.click('#trials button[data-key="p:x"]')
    xs = [_number(t) for t in _column(page, "p:x")]
    assert xs == sorted(xs, reverse=True)
    # Filter by phase: the early-stopped trials only.
    stopped = int(site.experiments["quad"]["status"]["trialsEarlyStopped"])
    page.select_option("#f-trial-phase", "EarlyStopped")
    assert page.inner_text("#shown-count") == f"{stopped} of 24 shown"
    assert set(_column(page, "phase")) <= {"EarlyStopped"}
    page.select_option("#f-trial-phase", index=0)
    # Filter by a parameter range (typed): x in [0.2, 0.6].
    page.select_option("#f-range-key", "p:x")
    page.fill("#f-range-min", "0.2")
    page.fill("#f-range-max", "0.6")
    page.click("#f-range-add")
    xs = [_number(t) for t in _column(page, "p:x")]
    assert xs and all(0.2 <= x <= 0.6 for x in xs)
    assert re.match(r"x: 0\.2 . 0\.6", page.inner_text("#range-chips"))
    # And by a metric: loss <= median of the shown ones.
    page.select_option("#f-range-key", "m:loss")
    page.fill("#f-range-max", "0.5")
    page.click("#f-range-add")
    losses = [_number(t) for t in _column(page, "m:loss")]
    assert all(v <= 0.5 for v in losses)
    # Removing the chips brings every trial back.
    page.click("#range-chips button >> nth=0")
    page.click("#range-chips button >> nth=0")
    assert page.inner_text("#shown-count") == "24 of 24 shown"
    # Text filter.
    name = _column(page, "name")[3]
    page.fill("#f-trial-text", name)
    assert _column(page, "name") == [name]
    page.fill("#f-trial-text", "")
    # Choose columns: hide "Reports"; the choice survives a reload.
    page.click("details.columns summary")
    page.uncheck('#column-menu input[data-key="observations"]')
    assert page.locator('#trials button[data-key="observations"]').count() == 0
    page.reload()
    page.wait_for_selector("#trials .vt-body .vt-row")
    assert page.locator('#trials button[data-key="observations"]').count() == 0
    assert page.locator('#trials button[data-key="p:opt"]').count() == 1


def test_the_table_is_operable_by_keyboard(page: Any, site: Site) -> None:
    _open_experiment(page, site, "quad-small")
    page.focus('#trials button[data-key="p:x"]')
    page.keyboard.press("Enter")
    xs = [_number(t) for t in _column(page, "p:x")]
    assert xs == sorted(xs)
    # Plot tabs move with the arrow keys.
    page.focus("#tab-history")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#tab-importance", "aria-selected") == "true"
    assert page.evaluate("() => document.activeElement.id") == "tab-importance"


def test_plots_hold_every_trial(page: Any, site: Site) -> None:
    _open_experiment(page, site, "quad")
    succeeded = _succeeded(site, "quad")
    # Parallel coordinates: x, opt, loss, acc over the succeeded trials.
    dims = page.evaluate(
        "() => document.querySelector('#plot-parcoords')?.hf.dims.map((d) => [d.label, d.values.length])"
    )
    assert dims == [["x", succeeded], ["opt", succeeded], ["loss", succeeded], ["acc", succeeded]]
    assert page.get_attribute("#plot-parcoords", "data-lines") == str(succeeded)
    assert page.locator("#plot-parcoords .pc-axis").count() == 4
    # No title runs into another (the colour bar's was next to the last axis's).
    overlaps = page.evaluate(
        """() => {
            const boxes = [...document.querySelectorAll(
                '#plot-parcoords .pc-label, #plot-parcoords .pc-color-label')]
                .map((t) => t.getBoundingClientRect());
            let n = 0;
            boxes.forEach((a, i) => boxes.slice(i + 1).forEach((b) => {
                if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) n++;
            }));
            return [boxes.length, n];
        }"""
    )
    assert overlaps == [5, 0]
    # History: one point per succeeded trial, drawn as SVG points; the best-so-far line.
    page.wait_for_function("() => document.querySelector('#plot-history')?.data")
    assert (
        page.evaluate("() => document.querySelector('#plot-history')?.data[0].x.length")
        == succeeded
    )
    assert (
        page.locator("#plot-history .scatterlayer .trace:first-child .point").count() == succeeded
    )
    best = page.evaluate("() => document.querySelector('#plot-history')?.data[1].y.at(-1)")
    assert abs(best - float(page.inner_text("#best dd.mono >> nth=2"))) < 1e-4
    # Importance: one bar per parameter, computed on the server by optuna's fANOVA.
    page.click("#tab-importance")
    page.wait_for_function(
        "() => document.querySelector('#plot-importance')?.data?.[0]?.y?.length === 2"
    )
    assert "fanova" in page.inner_text("#importance-note")
    page.select_option("#importance-evaluator", "ped-anova")
    page.wait_for_function(
        "() => document.querySelector('#importance-note')?.textContent.includes('ped-anova')"
    )
    # Slice, contour, EDF, scatter of the two metrics.
    page.click("#tab-slice")
    page.wait_for_function("() => document.querySelector('#plot-slice')?.data")
    assert (
        page.evaluate("() => document.querySelector('#plot-slice')?.data[0].x.length") == succeeded
    )
    page.click("#tab-contour")
    page.wait_for_function("() => document.querySelector('#plot-contour')?.data?.length === 2")
    grid = page.evaluate(
        "() => { const d = document.querySelector('#plot-contour')?.data; return [d[0].type, d[0].z.length, d[1].x.length]; }"
    )
    assert grid == ["contour", 60, succeeded]
    page.click("#tab-edf")
    page.wait_for_function("() => document.querySelector('#plot-edf')?.data")
    ys = page.evaluate("() => document.querySelector('#plot-edf')?.data[0].y")
    assert len(ys) == succeeded and ys[-1] == 1
    page.click("#tab-scatter")
    page.wait_for_function("() => document.querySelector('#plot-scatter')?.data")
    assert (
        page.evaluate("() => document.querySelector('#plot-scatter')?.data[0].x.length")
        == succeeded
    )
    # Intermediate values: 8 steps of every trial that ran them; early-stopped marked.
    page.click("#tab-intermediate")
    page.wait_for_function("() => document.querySelector('#plot-intermediate')?.data")
    curves = page.evaluate(
        """() => document.querySelector('#plot-intermediate')?.data.map(
            (t) => [t.name, t.x.filter((v) => v === null).length, t.x.length])"""
    )
    by_name = {name: (gaps, n) for name, gaps, n in curves}
    assert by_name["succeeded"][0] == succeeded
    assert by_name["succeeded"][1] == succeeded * 9  # 8 steps + a gap each
    stopped = int(site.experiments["quad"]["status"]["trialsEarlyStopped"])
    assert by_name["early-stopped"][0] == stopped
    assert by_name["stopped here"][1] == stopped


def test_brushing_an_axis_filters_the_table(page: Any, site: Site) -> None:
    _open_experiment(page, site, "quad")
    # Drag along the x axis (the first one) from 80% to 35% of its height: a real brush.
    box = page.evaluate(
        """() => {
            const axis = document.querySelector('#plot-parcoords .pc-hit[data-key="p:x"]');
            axis.scrollIntoView({block: 'center'});
            const r = axis.getBoundingClientRect();
            return {x: r.x + r.width / 2, top: r.y, height: r.height};
        }"""
    )
    x = box["x"]
    page.mouse.move(x, box["top"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(x, box["top"] + box["height"] * 0.45, steps=8)
    page.mouse.move(x, box["top"] + box["height"] * 0.65, steps=8)
    page.mouse.up()
    page.wait_for_function(
        "() => document.querySelector('#range-chips')?.textContent.startsWith('x:')"
    )
    lo, hi = page.evaluate(
        "() => document.querySelector('#plot-parcoords')?.hf.ranges.get('p:x').flat()"
    )
    shown = page.inner_text("#shown-count")
    count = int(shown.split(" of ")[0])
    xs = [_number(t) for t in _column(page, "p:x")]
    assert 0 < count < 24 and len(xs) == min(count, len(xs))
    assert all(lo - 1e-9 <= v <= hi + 1e-9 for v in xs), (lo, hi, xs)
    # The same count as the succeeded trials inside the range, read from the API.
    table = site.server.http.get("/apis/v1/namespaces/default/experiments/quad/trialtable").json()
    inside = [
        v
        for v, phase in zip(table["trials"]["params"]["x"], table["trials"]["phase"], strict=True)
        if lo <= v <= hi and phase == "Succeeded"
    ]
    assert count == len(inside)


def test_a_running_experiment_updates_without_a_reload(page: Any, site: Site) -> None:
    body = experiment("live", site.folder, trials=3, parallel=1, step_seconds=0.25)
    r = site.server.http.post("/apis/v1/namespaces/default/experiments", json=body)
    assert r.status_code == 201
    page.goto(f"{site.url}/experiments/default/live")
    page.wait_for_selector("#trials .vt-body .vt-row")
    page.evaluate("() => { window.__notReloaded = true; }")
    assert page.inner_text("#shown-count") != "3 of 3 shown" or "Running" in page.inner_text(
        "#trials"
    )
    # The trials finish; the table, the header and the plots follow.
    page.wait_for_function(
        "() => document.querySelector('#shown-count')?.textContent === '3 of 3 shown'",
        timeout=60_000,
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('#trials .vt-body .vt-row:not([hidden]) .badge')].every((b) => b.textContent === 'Succeeded')",
        timeout=60_000,
    )
    page.wait_for_function(
        "() => document.querySelector('#plot-parcoords')?.hf.dims[0].values.length === 3"
    )
    page.wait_for_function("() => document.querySelector('h1 .badge')?.textContent === 'Succeeded'")
    page.wait_for_function("() => document.querySelector('#plot-history')?.data[0].x.length === 3")
    assert page.evaluate("() => window.__notReloaded") is True
    wait_finished(site.server, "default", "live")


def test_trial_page_shows_curves_status_and_log(page: Any, site: Site) -> None:
    table = site.server.http.get(
        "/apis/v1/namespaces/default/experiments/quad-small/trialtable"
    ).json()
    trial = table["trials"]["name"][0]
    page.goto(f"{site.url}/experiments/default/quad-small/trials/{trial}")
    page.wait_for_function("() => document.querySelector('#plot-curves')?.data?.length === 2")
    lengths = page.evaluate(
        "() => document.querySelector('#plot-curves')?.data.map((t) => [t.name, t.x.length])"
    )
    assert lengths == [["loss", 8], ["acc", 8]]
    page.wait_for_function("() => document.querySelector('#trial-log')?.dataset.done === '1'")
    log = page.inner_text("#trial-log")
    assert log.count("loss=") == 8
    assert "Succeeded" in page.inner_text("h1")
    assert "TrialSucceeded" in page.inner_text(".card >> nth=1")
    # From whole-second times, no tenths it does not know (it said "0.0 s" for 0.6 s).
    shown = page.evaluate(
        "() => [...document.querySelectorAll('dt')].find((d) => d.textContent === 'Duration')"
        "?.nextElementSibling.textContent"
    )
    assert shown == "< 1 s" or (shown.endswith(" s") and "." not in shown), shown


def test_a_trial_that_is_not_there_says_so_on_the_page(
    page: Any, site: Site, console: Console
) -> None:
    # It left empty cards and a toast that went away.
    console.allow("/trials/nope")
    page.goto(f"{site.url}/experiments/default/quad-small/trials/nope")
    page.wait_for_selector("#trial-error")
    assert "not found" in page.inner_text("#trial-error")
    assert page.locator(".card").count() == 0


def test_a_running_trials_log_is_followed(page: Any, site: Site) -> None:
    body = experiment("follow", site.folder, trials=1, parallel=1, step_seconds=0.6)
    assert (
        site.server.http.post("/apis/v1/namespaces/default/experiments", json=body).status_code
        == 201
    )
    http = site.server.http
    trial = None
    for _ in range(200):
        items = http.get("/apis/v1/namespaces/default/experiments/follow/trials").json()["items"]
        if items:
            trial = items[0]["metadata"]["name"]
            break
        page.wait_for_timeout(50)
    assert trial
    page.goto(f"{site.url}/experiments/default/follow/trials/{trial}")
    page.wait_for_function(
        "() => document.querySelector('#trial-log')?.textContent.includes('loss=')"
    )
    first = page.inner_text("#trial-log").count("loss=")
    assert first < 8
    # Its reported values are summarised while it runs (it said "none reported yet").
    page.wait_for_function(
        "() => document.querySelector('.card h3')?.textContent === 'Metrics so far'"
    )
    assert "latest" in page.inner_text(".card >> nth=0")
    page.wait_for_function(
        "() => (document.querySelector('#trial-log')?.textContent.match(/loss=/g) || []).length === 8",
        timeout=60_000,
    )
    page.wait_for_function(
        "() => document.querySelector('h1 .badge')?.textContent === 'Succeeded'", timeout=60_000
    )
    wait_finished(site.server, "default", "follow")


def test_actions_raise_the_budget_stop_and_download(
    page: Any, site: Site, console: Console
) -> None:
    body = experiment("budget", site.folder, trials=2, parallel=2)
    body["spec"]["resumePolicy"] = "LongRunning"
    assert (
        site.server.http.post("/apis/v1/namespaces/default/experiments", json=body).status_code
        == 201
    )
    wait_finished(site.server, "default", "budget")
    page.goto(f"{site.url}/experiments/default/budget")
    page.wait_for_selector("#trials .vt-body .vt-row")
    # CSV of the shown trials.
    with page.expect_download() as download:
        page.click("#act-csv")
    text = Path(download.value.path()).read_text().splitlines()
    assert text[0] == "number,name,phase,reason,x,opt,loss,acc,started,completed"
    assert len(text) == 3
    # Raise maxTrialCount: the experiment restarts and runs two more trials.
    page.click("#act-raise")
    page.fill("#raise-value", "4")
    page.click("dialog button[type=submit]")
    page.wait_for_function(
        "() => document.querySelector('#shown-count')?.textContent === '4 of 4 shown'",
        timeout=60_000,
    )
    obj = wait_finished(site.server, "default", "budget")
    assert obj["spec"]["maxTrialCount"] == 4
    # An edit the API refuses shows its field error in the dialog.
    console.allow("status of 422")
    page.click("#act-raise")
    page.fill("#raise-value", "3")
    page.click("dialog button[type=submit]")
    page.wait_for_selector("dialog ul.problems li")
    assert "spec.maxTrialCount" in page.inner_text("dialog ul.problems")
    page.click("dialog button:has-text('Cancel')")
    # Delete.
    page.click("#act-delete")
    page.click("dialog button[value=ok]")
    page.wait_for_url(f"{site.url}/")
    assert site.server.http.get("/apis/v1/namespaces/default/experiments/budget").status_code == 404


def test_the_stop_dialog_counts_its_running_trials_in_words(page: Any, site: Site) -> None:
    body = experiment("stop-words", site.folder, trials=2, parallel=1, step_seconds=0.4)
    http = site.server.http
    assert http.post("/apis/v1/namespaces/default/experiments", json=body).status_code == 201
    page.goto(f"{site.url}/experiments/default/stop-words")
    page.wait_for_function(
        "() => document.querySelector('h1 .badge')?.textContent === 'Running'"
        " && document.querySelector('#trials .vt-body .vt-row') !== null"
    )
    page.get_by_role("button", name="Stop", exact=True).click()
    text = page.inner_text("dialog p")
    # One trial runs at a time here: "the 1 running ones finish" before.
    assert text.endswith(("the running one finishes.", "none is running.")), text
    page.get_by_role("button", name="Cancel").click()
    wait_finished(site.server, "default", "stop-words")
