"""The static HTML pages of a run and of the results index (pure rendering)."""

from __future__ import annotations

from html.parser import HTMLParser

from multi6lab.results import html


class Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a":
            self.links.append(a["href"] or "")
        if tag == "img":
            self.images.append(a["src"] or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def summary(name: str = "demo") -> dict[str, object]:
    stat = {"p50": 6.8, "p95": 10.5, "max": 10.9, "p50_ci": [6.1, 7.3], "p95_ci": [9.4, None]}
    return {"scenario": name, "approach": "nptv6", "trigger": "link", "fault": "link_down exa isp end",
            "trials": 2, "topology": "figure1", "datapath": "userspace (netdev)", "started": "2026-11-28T23:00:00",
            "command": "multi6lab run scenarios/demo.yaml --trials 2",
            "metrics": {"outbound": {"outage_ms": stat, "disruption_ms": stat},
                        "inbound": {"outage_ms": None, "reason": "not recovered before the restore at +1000 ms"},
                        "detection_ms": stat, "new_session_ms": None, "rtt_ms": {"p50": 50.81},
                        "tcp_sessions": {"survived": 2, "total": 2, "reset": 0, "resumed_before_restore": 2},
                        "new_clients": {"started_in_fault": 40, "within_1s": 0.5, "within_3s": 1.0}},
            "provenance": {"commit": "abc", "seed": 1}}


def test_a_run_page_links_what_exists_and_shows_intervals() -> None:
    files = ["summary.json", "trials.csv", "timeline-outbound.png", "timeline-inbound.png", "timeline-inbound.svg",
             "trial-01/outbound.csv", "trial-01/timeline.svg",
             "trial-01/controller-events.jsonl", "trial-02/outbound.csv", "report.html", "report.png",
             "frr/exa/bgpd.log", "keys/s1.key"]
    page = html.run_page(summary(), [{"trial": 1, "outbound_outage_ms": "6.1", "fault_epoch_s": "1796652003.250000"},
                                     {"trial": "2"}], files)
    p = Collect()
    p.feed(page)
    assert p.images == ["timeline-inbound.svg", "timeline-outbound.png"]  # the SVG where there is one
    assert {"trial-01/outbound.csv", "trial-01/controller-events.jsonl", "trial-02/outbound.csv", "summary.json",
            "trials.csv", "trial-01/timeline.svg", "frr/exa/bgpd.log"} == set(p.links)  # not the page, its
    # picture or the mapping keys (secrets)
    assert p.links.count("trial-01/timeline.svg") == 1 and "6.1" in p.text  # a trial's plot in its own column
    text = " ".join(p.text)
    assert "10.5 [9.4, —]" in text and "not recovered before the restore at +1000 ms" in text
    assert "within 1 s: 50%" in text and "commit" in text and "at a round trip of 50.81 ms" in text
    # Each trial's fault on the captures' clock, to line a pcap up with it in Wireshark.
    assert "2026-12-07 14:00:03.250000" in text and "1796652003.250000" in text and "frame.time_epoch >= E" in text


def test_a_run_from_a_tcg_guest_says_so_before_its_numbers() -> None:
    s = summary()
    assert "Measured in a" not in html.run_page(s, [], [])  # a host's run: nothing to warn of
    s["provenance"] = {"commit": "abc", "seed": 1, "substrate": "qemu TCG guest (emulated CPU)"}
    page = html.run_page(s, [], [])
    assert page.index("Measured in a qemu TCG guest (emulated CPU).") < page.index("<h2>Summary</h2>")


def test_a_censored_statistic_reads_more_than_the_fault() -> None:
    s = summary()
    s["metrics"]["outbound"]["outage_ms"] = {"p50": 6.8, "p95": 1990.0, "max": 1990.0,  # type: ignore[index]
                                             "p50_ci": [6.1, 1990.0], "p95_ci": [1990.0, None], "not_recovered": 9,
                                             "censored": ["p95", "max", "p95_ci_lower"]}
    p = Collect()
    p.feed(html.run_page(s, [], []))
    assert "> 1.99 s [> 1.99 s, —]" in " ".join(p.text)


def test_values_are_escaped_and_the_index_is_newest_first() -> None:
    page = html.run_page(summary("<script>alert(1)</script>"), [], [])
    assert "<script>" not in page and "&lt;script&gt;" in page
    old, new = summary("old"), summary("new")
    new["started"] = "2026-11-29T01:00:00"
    index = html.index_page([("run-old", old), ("run-new", new)])
    p = Collect()
    p.feed(index)
    assert p.links == ["run-new/report.html", "run-old/report.html"]
    assert "not recovered" in index and "10.5 [9.4, —]" in index


def test_a_comparison_page_links_each_cell_to_its_report_and_escapes_errors() -> None:
    ok = summary("nptv6-link-down")
    failed = {"scenario": "nptv6-blackhole", "error": "EnvError: <lab> broke"}
    cells = {("nptv6 × link", "link down"): ok, ("nptv6 × link", "blackhole"): failed}
    files = ["nptv6-link-down/report.html", "comparison.png", "comparison.svg", "comparison.json"]
    page = html.comparison_page(["nptv6 × link"], ["link down", "blackhole", "loss"], cells, {"seed": 7}, files)
    p = Collect()
    p.feed(page)
    assert p.links == ["nptv6-link-down/report.html"]  # a failed cell has no report to open
    assert p.images == ["comparison.svg"]
    text = " ".join(p.text)
    assert "out 6.8 / 10.5 [p95 ≥ 9.4]" in text and "failed: EnvError: <lab> broke" in text and "seed" in text
    assert "<lab>" not in page
