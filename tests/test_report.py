"""The HTML report: figures, ranking, escaping, self-containment, errors, atomicity, Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from retain import plots
from retain.errors import RetainError
from retain.reports import html as html_report
from retain.reports.html import render_report, report_html
from retain.serving.contract import LIST_COLUMNS, LIST_FILE, SUMMARY_FILE, SUMMARY_KEYS

CHROMIUM = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ROWS = 300
CAPACITY = 60
NASTY_REASON = '<script>alert("x")</script> complaints & returns'
PLAYBOOK = {  # action: (cost, save_rate)
    "personal_call": (15.0, 0.30),
    "win_back_offer": (6.0, 0.20),
    "loyalty_reward": (3.0, 0.12),
    "reminder_email": (0.3, 0.04),
}
SEGMENTS = ["Champions", "Loyal", "At Risk", "Cannot Lose Them", "Hibernating", "New"]
TIERS = ["high", "medium", "low", "potential"]
CHURN_METRICS = {
    "roc_auc": 0.8123,
    "pr_auc": 0.7012,
    "log_loss": 0.4871,
    "brier": 0.1634,
    "lift_at_top": 1.87,
    "capture_at_top": 0.2345,
    "ece": 0.0213,
    "positive_rate": 0.41,
    "rows": 2400.0,
}
REASONS = [
    "no purchase for {d} days; usually buys every {g}",
    "2 complaints in the last 30 days",
    "spend in the last 90 days at {s}% of the 90 before",
    "returns 35% of orders",
    "survey score 2.0",
]


def make_list(seed: int) -> tuple[pd.DataFrame, dict]:
    """A small, internally consistent list and summary as ``retain score`` writes them."""
    rng = np.random.default_rng(seed)
    n = ROWS
    churn = rng.beta(2.0, 3.0, n)
    clv = rng.lognormal(5.0, 1.0, n)
    tier = np.where(clv > 400, "high", np.where(clv > 150, "medium", "low"))
    tier = np.where(rng.uniform(size=n) < 0.1, "potential", tier)
    action = np.where(
        tier == "high",
        "personal_call",
        rng.choice(["win_back_offer", "loyalty_reward", "reminder_email"], n),
    )
    cost = np.array([PLAYBOOK[a][0] for a in action])
    save = np.array([PLAYBOOK[a][1] for a in action])
    risk = churn * clv
    gain = risk * save - cost
    order = np.lexsort((-risk, -gain))  # by gain, then value at risk, both descending
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(1, n + 1)
    selected = (rank <= CAPACITY) & (gain > 0)
    recency = rng.integers(5, 300, n)

    def reason(k: int, i: int) -> str:
        if k == 2 and i % 3 == 0:
            return ""  # third reason may be empty
        text = REASONS[(i + k) % len(REASONS)]
        return text.format(d=recency[i], g=rng.integers(10, 60), s=rng.integers(5, 90))

    frame = pd.DataFrame(
        {
            "rank": rank,
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "as_of": pd.Timestamp("2025-06-01").date(),
            "selected": selected,
            "churn_probability": churn,
            "clv": clv,
            "value_at_risk": risk,
            "recommended_action": action,
            "action_cost": cost,
            "save_rate": save,
            "expected_net_gain": gain,
            "clv_if_retained": clv,
            "group": np.where(selected, np.where(rank % 10 == 3, "control", "treatment"), None),
            "expected_incremental_margin": gain + cost,
            "expected_churn_effect": -churn * save,
            "sleeping_dog": False,
            "segment": rng.choice(SEGMENTS, n),
            "value_tier": tier,
            "loyalty_class": rng.choice(["loyal", "potential", "marginal"], n),
            "lifecycle_stage": rng.choice(["new", "growing", "mature", "declining"], n),
            "cluster": rng.integers(0, 5, n),
            "reason_1": [reason(0, i) for i in range(n)],
            "reason_2": [reason(1, i) for i in range(n)],
            "reason_3": [reason(2, i) for i in range(n)],
            "recency_days": recency.astype(float),
            "frequency": rng.integers(1, 40, n).astype(float),
            "monetary_total": rng.gamma(2.0, 200.0, n),
            "influence_value": np.where(rng.random(n) < 0.1, rng.gamma(2.0, 100.0, n), 0.0),
        }
    )
    frame.loc[rank == 1, "reason_1"] = NASTY_REASON
    frame = frame.sort_values("rank").reset_index(drop=True)[list(LIST_COLUMNS)]
    chosen = frame[frame["selected"]]
    bins = np.clip((frame["churn_probability"] * 10).astype(int), 0, 9) + 1
    calibration = [
        {
            "bin": int(b),
            "rows": int((bins == b).sum()),
            "mean_predicted": float(frame["churn_probability"][bins == b].mean()),
            "observed_rate": float(
                np.clip(frame["churn_probability"][bins == b].mean() + 0.03, 0, 1)
            ),
        }
        for b in sorted(bins.unique())
    ]
    contacted = np.linspace(0, 1, 101)
    # as training logs them: <model>_<metric>, "model" being the champion
    churn_metrics = {f"model_{k}": v for k, v in CHURN_METRICS.items()}
    churn_metrics |= {"logistic_roc_auc": 0.7612, "btyd_roc_auc": 0.7034, "btyd_brier": 0.2011}
    churn_metrics |= {"recency_rule_roc_auc": 0.6543, "recency_rule_lift_at_top": 1.41}
    clv_metrics = {"model_gini": 0.6421, "model_spearman": 0.71, "ml_gini": 0.6421}
    clv_metrics |= {"btyd_gini": 0.5518, "model_decile_mape": 0.18}
    psi = {"recency_days": 0.31, "frequency": 0.04, "spend_90d": 0.27, "complaints_30d": 0.01}
    summary = {
        "as_of": "2025-06-01",
        "generated_at": "2025-06-02T06:30:00Z",
        "counts": {
            "customers_active": n,
            "scored": n,
            "selected": int(chosen.shape[0]),
            "by_action": chosen["recommended_action"].value_counts().to_dict(),
        },
        "totals": {
            "value_at_risk": float(frame["value_at_risk"].sum()),
            "clv": float(frame["clv"].sum()),
            "expected_net_gain": float(frame["expected_net_gain"].sum()),
            "selected_value_at_risk": float(chosen["value_at_risk"].sum()),
            "selected_expected_net_gain": float(chosen["expected_net_gain"].sum()),
            "selected_cost": float(chosen["action_cost"].sum()),
        },
        "currency": "EUR",
        "selection": {
            "capacity": CAPACITY,
            "budget": None,
            "selected": int(chosen.shape[0]),
            "cost": float(chosen["action_cost"].sum()),
            "lp_bound": float(chosen["expected_net_gain"].sum()),
            "optimality_gap_share": 0.0,
            "optimal": True,
            "notes": [
                "31 of the capacity of 60 customers left unused: only 29 customers have a "
                "positive expected net gain, and all are selected"
            ],
        },
        "models": {
            "churn": {
                "name": "retain-churn",
                "version": "7",
                "run_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
                "metrics": churn_metrics,
            },
            "clv": {
                "name": "retain-clv",
                "version": "3",
                "run_id": "ffee0011",
                "metrics": clv_metrics,
            },
            "segments": {
                "name": "retain-segments",
                "version": "2",
                "run_id": "99aa",
                "metrics": {},
            },
        },
        "model_card": {
            "churn": {
                "metrics": churn_metrics,
                "calibration": calibration,
                "gain": {
                    "share_contacted": contacted.tolist(),
                    "share_captured": (1 - (1 - contacted) ** 2.2).tolist(),
                },
            },
            "clv": {"metrics": clv_metrics},
        },
        "feature_views": {"rfm": "v3", "interactions": "v2"},
        "data_fingerprint": "0123456789abcdef",
        "drift": {
            "threshold": 0.25,
            "max_psi": 0.31,
            "drifted": ["recency_days", "spend_90d"],
            "psi": psi,
            "strict": False,
        },
        "horizons": {"churn_days": 90, "clv_days": 365, "active_days": 365},
        "pseudonymized": False,
        "reasons_method": "treeshap",
    }
    assert set(summary) <= set(SUMMARY_KEYS)
    return frame, summary


def write_list(folder: Path, frame: pd.DataFrame, summary: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / LIST_FILE, index=False)
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def scored(seed):
    return make_list(seed)


@pytest.fixture(scope="module")
def list_dir(scored, tmp_path_factory) -> Path:
    return write_list(tmp_path_factory.mktemp("list") / "2025-06-01", *scored)


@pytest.fixture(scope="module")
def report(list_dir, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    path = render_report(list_dir, out)
    assert path == out
    return path, path.read_text(encoding="utf-8")


def priority_rows(text: str) -> list[tuple[int, str]]:
    section = text[text.index('<section class="priority">') :]
    section = section[: section.index("</section>")]
    return [
        (int(rank.replace(",", "")), customer)
        for rank, customer in re.findall(
            r'<tr><td class="num">([\d,]+)</td><td class="id">([^<]*)</td>', section
        )
    ]


def test_header_and_kpis_show_formatted_totals(report, scored):
    _, text = report
    frame, summary = scored
    totals, counts = summary["totals"], summary["counts"]
    assert "Retention priority list — as of 2025-06-01" in text
    assert "2025-06-02T06:30:00Z" in text
    for value in (
        totals["value_at_risk"],
        totals["selected_value_at_risk"],
        totals["selected_expected_net_gain"],
        totals["selected_cost"],
    ):
        assert f'<div class="value">{value:,.2f}</div>' in text
    assert f'<div class="value">{counts["customers_active"]:,}</div>' in text
    assert f'<div class="value">{counts["selected"]:,}</div>' in text
    assert f"{totals['value_at_risk']:,.2f}" in text.split("</header>")[0]
    assert "capacity 60 customers" in text
    assert "active = a purchase in the last 365 days" in text


def test_breakdowns_and_actions(report, scored):
    _, text = report
    frame, _ = scored
    for segment, risk in frame.groupby("segment")["value_at_risk"].sum().items():
        assert f"<td>{segment}</td>" in text
        assert f"{risk:,.2f}" in text
    tier_section = text[text.index("Value at risk by value tier") :]
    positions = [tier_section.index(f"<td>{tier}</td>") for tier in TIERS]
    assert positions == sorted(positions)  # high, medium, low, potential
    chosen = frame[frame["selected"]]
    for action, group in chosen.groupby("recommended_action"):
        assert f'<td>{action}</td><td class="num">{len(group):,}</td>' in text
        assert f"{group['expected_net_gain'].sum():,.2f}" in text
    assert "Churn-probability distribution" in text


def test_top_rows_in_rank_order_with_formatted_numbers(report, scored):
    _, text = report
    frame, _ = scored
    rows = priority_rows(text)
    assert [rank for rank, _ in rows] == list(range(1, 51))
    assert [customer for _, customer in rows] == frame["customer_id"].head(50).tolist()
    first = frame.iloc[0]
    assert f"{first['churn_probability']:.1%}" in text
    assert f"{first['clv']:,.2f}" in text
    assert f"{first['value_at_risk']:,.2f}" in text
    assert frame.iloc[50]["customer_id"] not in text  # only the top 50


def test_top_argument_and_unsorted_input(scored):
    frame, summary = scored
    shuffled = frame.sample(frac=1.0, random_state=1)
    lean = {k: v for k, v in summary.items() if k != "model_card"}  # fewer charts: faster
    text = report_html(shuffled, lean, top=7)
    assert [r for r, _ in priority_rows(text)] == list(range(1, 8))
    assert "Top 7 customers by priority" in text
    with pytest.raises(RetainError, match="top"):
        report_html(frame, lean, top=0)


def test_reasons_are_escaped(report):
    _, text = report
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; complaints &amp; returns" in text


def test_self_contained_with_embedded_images(report):
    path, text = report
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600: a report is shared
    sources = re.findall(r'<img[^>]*\ssrc="([^"]*)"', text)
    # value at risk by segment and tier, histogram, incremental profit, calibration, gain
    assert len(sources) == 6
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.split(",", 1)[1])[:8] == PNG_MAGIC
    assert "http" not in text.lower()
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert not re.search(r'(?:src|href)="(?!data:)', text)


def test_model_card(report):
    _, text = report
    card = text[text.index('<section class="model-card">') :]
    for expected in (
        "retain-churn",
        "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        # champion first, then the baselines it was compared with
        '<th>Metric</th><th class="num">Champion</th><th class="num">logistic</th>'
        '<th class="num">btyd</th><th class="num">recency rule</th>',
        '<td>ROC-AUC</td><td class="num"><strong>0.812</strong></td><td class="num">0.761</td>'
        '<td class="num">0.703</td><td class="num">0.654</td>',
        '<td>Brier score</td><td class="num"><strong>0.1634</strong></td><td class="num">—</td>'
        '<td class="num">0.2011</td>',
        'PR-AUC (average precision)</td><td class="num"><strong>0.701</strong>',
        'Expected calibration error</td><td class="num"><strong>0.0213</strong>',
        'Lift at top 10%</td><td class="num"><strong>1.87×</strong>',
        'Capture at top 10%</td><td class="num"><strong>23.4%</strong>',
        '<td>Normalized Gini</td><td class="num"><strong>0.642</strong></td>'
        '<td class="num">0.642</td><td class="num">0.552</td>',
        "TreeSHAP (exact contributions)",
        "<dt>rfm</dt><dd>v3</dd>",
        "0123456789abcdef",
        "Maximum PSI 0.310",
    ):
        assert expected in card, expected
    drifted = re.findall(r'<tr class="drifted"><td>([^<]+)</td>', card)
    assert drifted == ["recency_days", "spend_90d"]
    assert "<td>frequency</td>" in card
    assert 'alt="Calibration: observed vs predicted"' in card
    assert 'alt="Cumulative gain curve"' in card


def test_absent_optional_parts_say_not_available(scored):
    frame, summary = scored
    lean = {k: v for k, v in summary.items() if k not in ("model_card", "models", "totals")}
    lean["drift"] = {}
    lean["feature_views"] = None
    text = report_html(frame, lean)
    for part in ("Model versions", "Churn metrics", "CLV metrics", "Calibration chart",
                 "Cumulative gain chart", "Drift check", "Feature view versions"):  # fmt: skip
        assert f'<p class="na">{part} not available.</p>' in text, part
    # totals missing from the summary are taken from the list
    chosen = frame[frame["selected"]]
    assert f"{chosen['action_cost'].sum():,.2f}" in text
    plain = {"as_of": "2025-06-01", "model_card": {"churn": {"metrics": {"roc_auc": 0.7}}}}
    assert '<td>ROC-AUC</td><td class="num"><strong>0.700</strong></td>' in report_html(
        frame.head(3), plain
    )
    empty = report_html(frame.head(0), {"as_of": "2025-06-01"})
    assert "No customer is selected." in empty


def test_missing_columns_name_file_and_columns(tmp_path, scored):
    frame, summary = scored
    folder = write_list(
        tmp_path / "list", frame.drop(columns=["value_at_risk", "reason_2"]), summary
    )
    with pytest.raises(RetainError) as caught:
        render_report(folder, tmp_path / "report.html")
    message = str(caught.value)
    assert "value_at_risk" in message and "reason_2" in message
    assert str(folder / LIST_FILE) in message
    assert not (tmp_path / "report.html").exists()


def test_missing_files(tmp_path, scored):
    with pytest.raises(RetainError, match="not found"):
        render_report(tmp_path / "nowhere", tmp_path / "r.html")
    folder = write_list(tmp_path / "list", *scored)
    (folder / SUMMARY_FILE).unlink()
    with pytest.raises(RetainError, match=SUMMARY_FILE):
        render_report(folder / LIST_FILE, tmp_path / "r.html")


def test_atomic_write_keeps_previous_report(tmp_path, report, list_dir, scored, monkeypatch):
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    shutil.copyfile(report[0], out)
    previous = out.read_bytes()

    def broken_write(self, data, *args, **kwargs):
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(data[:100])
        raise OSError("disk full")

    # the page itself is tested elsewhere; here only the write matters
    monkeypatch.setattr(
        html_report, "report_html", lambda frame, summary, top, **_: "<p>new</p>" * 50
    )
    monkeypatch.setattr(Path, "write_text", broken_write)
    with pytest.raises(OSError, match="disk full"):
        render_report(list_dir / LIST_FILE, out)  # the parquet path works as well as its folder
    monkeypatch.undo()
    assert out.read_bytes() == previous
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]

    bad = write_list(tmp_path / "bad", scored[0].drop(columns=["clv"]), scored[1])
    with pytest.raises(RetainError, match="clv"):
        render_report(bad, out)
    assert out.read_bytes() == previous
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


def test_new_plots(seed):
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, 200)
    fig = plots.probability_histogram(values, values > 0.7)
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == 40
    table = pd.DataFrame(
        {"mean_predicted": [0.1, 0.5], "observed_rate": [0.2, 0.4], "rows": [5, 9]}
    )
    (ax,) = plots.calibration_table_plot(table).axes
    assert len(ax.lines) == 2
    contacted = np.linspace(0, 1, 11)
    (ax,) = plots.gain_curve_plot(contacted, np.sqrt(contacted)).axes
    assert ax.get_legend().get_texts()[0].get_text() == "Model (top 10%: 32%)"
    with pytest.raises(ValueError, match="observed_rate"):
        plots.calibration_table_plot(table.drop(columns="observed_rate"))


def _chromium(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={cwd / 'profile'}",
            *args,
        ],  # fmt: skip
        capture_output=True,
        text=True,
        timeout=90,
        cwd=cwd,
        check=False,
    )


def test_renders_in_headless_chromium(report, scored, tmp_path):
    if CHROMIUM is None:
        pytest.skip("/usr/bin/chromium is absent; .ci/run installs it (apt-get install chromium)")
    path, _ = report
    frame, summary = scored
    url = path.resolve().as_uri()
    dom = _chromium("--dump-dom", url, cwd=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Key figures" in dom.stdout
    assert f"{summary['totals']['value_at_risk']:,.2f}" in dom.stdout
    assert [c for _, c in priority_rows(dom.stdout)] == frame["customer_id"].head(50).tolist()

    shot = tmp_path / "report.png"
    result = _chromium(f"--screenshot={shot}", "--window-size=1280,1600", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 50_000
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[:2] == (1600, 1280)
    assert pixels[..., :3].std() > 0.05  # not a blank page


def test_currency_selection_quality_and_unused_limits_are_stated(report):
    _, text = report
    header = text.split("</header>")[0]
    assert "amounts in EUR" in header
    assert "The selection is optimal" in header
    assert '<p class="status-warn">31 of the capacity of 60 customers left unused' in header
    assert "Value at risk (EUR)" in text and "Expected net gain (EUR)" in text
    assert "Money in EUR" in text


def test_group_bars_keep_the_given_order_and_show_the_selected_part():
    totals = pd.Series([5.0, 40.0, 1.0, 9.0], index=["high", "medium", "low", "potential"])
    chosen = pd.Series([4.0, 2.0, 0.0, 1.0], index=totals.index)
    (ax,) = plots.group_bar_plot(totals, chosen, title="t", xlabel="x").axes
    labels = sorted(ax.get_yticklabels(), key=lambda label: -label.get_position()[1])
    assert [label.get_text() for label in labels] == ["high", "medium", "low", "potential"]
    widths = [patch.get_width() for patch in ax.patches]
    assert widths == [5.0, 40.0, 1.0, 9.0, 4.0, 2.0, 0.0, 1.0]


def test_selected_histogram_is_drawn_as_shares_of_its_own_group(seed):
    values = np.random.default_rng(seed).uniform(0, 1, 10_000)
    fig = plots.probability_histogram(values, values > 0.99)
    heights = [patch.get_height() for patch in fig.axes[0].patches]
    assert sum(heights[:20]) == pytest.approx(100.0)
    assert sum(heights[20:]) == pytest.approx(100.0)  # a hundred customers, as visible


def test_report_command_writes_beside_the_list_by_default(list_dir):
    from typer.testing import CliRunner

    from retain.cli import app

    target = list_dir / "report.html"
    target.unlink(missing_ok=True)
    result = CliRunner().invoke(app, ["report", "--list", str(list_dir / LIST_FILE)])
    assert result.exit_code == 0, result.output
    assert target.stat().st_size > 10_000


def test_influence_value_is_shown_where_customers_referred_others(scored):
    frame, summary = scored
    lean = {k: v for k, v in summary.items() if k != "model_card"}
    frame = frame.sort_values("rank").reset_index(drop=True)
    frame.loc[0, "influence_value"] = 4321.5
    text = report_html(frame, lean, top=5)
    assert ">Influence value</th>" in text and "4,321.50" in text
    for without in (frame.assign(influence_value=0.0), frame.drop(columns="influence_value")):
        assert "Influence value" not in report_html(without, lean, top=5)
