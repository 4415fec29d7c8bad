"""The loader reports every problem, each with the right line and a message a user can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from multi6lab.topologies import loader
from multi6lab.topologies.yamlsrc import InputError

ROOT = Path(__file__).resolve().parents[2]
FIGURE1 = (ROOT / "topologies" / "figure1.yaml").read_text()
SHIPPED = sorted((ROOT / "topologies").glob("*.yaml"))


def problems(text: str) -> list[str]:
    with pytest.raises(InputError) as exc:
        loader.loads(text, "t.yaml")
    return [str(p) for p in exc.value.problems]


def line_of(text: str, needle: str, after: str = "") -> int:
    """The first line holding ``needle`` (below the first line holding ``after``, if given)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i + 1 for i, line in enumerate(lines) if i >= start and needle in line)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_topologies_load(path: Path) -> None:
    t = loader.load(path)
    assert t.sites and t.isps and t.links


def test_figure1_model() -> None:
    t = loader.loads(FIGURE1)
    site = t.site("site")
    assert site.approach == "nptv6"
    assert site.triggers == ("link", "heartbeat")  # from defaults.site
    assert [e.name for e in site.exits] == ["exa", "exb"]  # preference = declaration order
    assert str(site.exit("exa").delegation) == "3fff:a:5::/48"
    assert str(t.isp("ispa").infra) == "3fff:a::/56"  # default: first /56 of the PA prefix
    assert all(lk.bw == 100 for lk in t.links)  # from defaults.link
    assert t.kinds["exa"] == "exit" and t.kinds["h1"] == "host" and t.kinds["r"] == "remote"


# (what is broken, text replaced in figure1, replacement, expected message fragment, line anchor)
CASES = [
    ("unknown key", 'ispa: {asn: 64501,', 'ispa: {colour: red, asn: 64501,', "unknown key 'colour'", "colour"),
    ("wrong type", "asn: 64501", "asn: many", "'many' is not of type 'integer'", "asn: many"),
    ("bad approach", "approach: nptv6", "approach: carrier-pigeon", "is not one of", "carrier-pigeon"),
    ("not a prefix", '"3fff:a::/32"', '"3fff:a::/33x"', "not an IPv6 prefix", "3fff:a::/33x"),
    ("impossible prefix", '"3fff:a::/32"', '"3fff:a::/129"', "not a valid IPv6 prefix", "/129"),
    ("host bits set", '"3fff:b::/32"', '"3fff:b::1/32"', "has host bits set (did you mean 3fff:b::/32?)",
     "3fff:b::1/32"),
    ("delegation outside PA", '"3fff:a:5::/48"', '"3fff:b:7::/48"', "is outside ispa's PA prefix 3fff:a::/32",
     "3fff:b:7::/48"),
    ("delegation overlaps infra", '"3fff:a:5::/48"', '"3fff:a::/48"', "overlaps ispa's infrastructure prefix",
     '"3fff:a::/48"'),
    ("overlapping PA", '"3fff:b::/32"', '"3fff:a:8000::/33"', "overlaps 3fff:a::/32", "3fff:a:8000::/33"),
    ("overlapping delegations", "delegation: \"3fff:b:5::/48\"}", "delegation: \"3fff:b:5::/48\"}\n      exc: "
     "{isp: ispb, delegation: \"3fff:b:5::/56\"}", "overlaps delegation 3fff:b:5::/48", "3fff:b:5::/56"),
    ("unknown ISP", "exb: {isp: ispb", "exb: {isp: ispz", "unknown ISP 'ispz'", "ispz"),
    ("dangling link", '["r:eth0", "core:eth3"]', '["r:eth0", "cor:eth3"]', "unknown node 'cor'", "cor:eth3"),
    ("duplicate name", "hosts: [h1]", "hosts: [h1, r]", "duplicate node name 'r'", "hosts: [h1, r]"),
    ("interface name too long", '["h1:eth0", "sw:eth1"]', '["h1:eth0", "sw:eth1"]\n  - endpoints: '
     '["averylongname:eth0", "core:eth9"]', "is 18 characters; Linux allows 15", "averylongname"),
    ("exit to foreign ISP", '["exb:eth2", "ispb:eth1"]', '["exb:eth2", "ispa:eth9"]',
     "its delegation is from ispb", '["exb:eth2", "ispa:eth9"]'),
    ("interface used twice", '["r:eth0", "core:eth3"]', '["r:eth0", "core:eth2"]',
     "interface core:eth2 is already used", '["r:eth0", "core:eth2"]'),
    ("nptv6 without identity", '    identity: "fd00:5::/48"', "    pi2: 1", "needs an 'identity' prefix",
     "sites:/  site:"),
    ("routing with controller triggers", "approach: nptv6", "approach: routing",
     "approach 'routing' is triggered by routing alone", "sites:/  site:"),
    ("routing trigger without routing", "triggers: [link, heartbeat]", "triggers: [link, routing]",
     "trigger 'routing' belongs to approach 'routing', not 'nptv6'", "sites:/  site:"),
    ("routing with load-share", "    approach: nptv6\n    triggers: [link, heartbeat]", "    approach: routing\n"
     "    triggers: [routing]\n    exit_policy: load-share", "BGP chooses the exit", "sites:/  site:"),
    ("weight without load-share", 'exb: {isp: ispb, delegation: "3fff:b:5::/48"}',
     'exb: {isp: ispb, delegation: "3fff:b:5::/48", weight: 2}', "weight 2 shares flows among exits, which only "
     "exit_policy load-share does", "exb: {isp: ispb"),
    ("transport without a choice of exit", "approach: nptv6\n    triggers: [link, heartbeat]",
     "approach: source-routing\n    triggers: [link, transport]", "trigger 'transport' moves a destination",
     "sites:/  site:"),
    ("shared AS", "asn: 64500}", "asn: 64501}", "AS 64501 of ISP ispa is already the AS of core core",
     "ispa: {asn"),
    ("keepalive not below hold", "    triggers: [link, heartbeat]", "    triggers: [link, heartbeat]\n"
     "    bgp: {keepalive_s: 9, hold_s: 9}", "keepalive_s (9) must be shorter than hold_s (9)", "sites:/  site:"),
    ("PI longer than /64", '"3fff:5::/48"', '"3fff:5::/96"', "PI prefix 3fff:5::/96 must be /64 or shorter",
     "3fff:5::/96"),
    ("unequal NPT lengths", '"fd00:5::/48"', '"fd00:5::/56"', "nptv6 maps prefixes of equal length",
     "exa: {isp"),
    ("identities longer than /64", '''identity: "fd00:5::/48"''', '''identity: "fd00:5::/72"''',
     "identity prefix fd00:5::/72 must be /64 or shorter", "fd00:5::/72"),
    ("more subnets than fit", '''identity: "fd00:5::/48"''', '''identity: "fd00:5::/48"\n    subnets: 300''',
     "300 is greater than the maximum of 256", "300"),
    ("link kinds", '["r:eth0", "core:eth3"]', '["r:eth0", "sw:eth9"]', "a remote (r) cannot link to a fabric",
     '["r:eth0", "sw:eth9"]'),
    ("missing required", "    fabric: sw\n", "", "'fabric' is required", "sites:/  site:"),
    ("duplicate key", "  ispb: {asn: 64502", "  ispa: {asn: 1, prefix: \"3fff:e::/32\"}\n  ispb: {asn: 64502",
     "duplicate key", 'ispa: {asn: 1'),
    ("YAML syntax", "hosts: [h1]", "hosts: [h1", "YAML syntax error", None),
]


@pytest.mark.parametrize("what,old,new,message,anchor", CASES, ids=[c[0] for c in CASES])
def test_each_error_kind_names_line_and_field(what: str, old: str, new: str, message: str,
                                              anchor: str | None) -> None:
    assert old in FIGURE1, f"fixture for '{what}' no longer applies to figure1.yaml"
    text = FIGURE1.replace(old, new, 1)
    found = problems(text)
    hits = [p for p in found if message in p]
    assert hits, f"expected '{message}' in {found}"
    assert all(p.startswith("t.yaml:") for p in found)
    if anchor is not None:
        after, _, needle = anchor.rpartition("/") if anchor.startswith("sites:/") else ("", "", anchor)
        want = line_of(text, needle, after)
        assert any(p.split(":")[1] == str(want) for p in hits), f"expected line {want}: {hits}"


def test_routing_needs_a_pi_prefix() -> None:
    text = FIGURE1.replace('    pi: "3fff:5::/48"', "").replace("approach: nptv6", "approach: routing").replace(
        "[link, heartbeat]", "[routing]")
    assert any("approach 'routing' needs a provider-independent 'pi' prefix" in p for p in problems(text))


def test_routing_site_defaults() -> None:
    t = loader.loads(FIGURE1.replace("approach: nptv6", "approach: routing").replace("[link, heartbeat]",
                                                                                      "[routing]"))
    site = t.site("site")
    assert site.asn == 65000 and t.cores[0].asn == 64500
    assert site.bgp.describe() == "bgp 60/180 s"  # RFC 4271's suggested keepalive/hold, no BFD


def test_all_problems_reported_in_one_pass() -> None:
    text = (FIGURE1.replace("asn: 64501", "asn: 64501, colour: red")
            .replace('"3fff:a:5::/48"', '"3fff:b:7::/48"')
            .replace('["r:eth0", "core:eth3"]', '["r:eth0", "cor:eth3"]'))
    found = problems(text)
    assert any("unknown key 'colour'" in p for p in found)
    assert any("outside ispa's PA prefix" in p for p in found)
    assert any("unknown node 'cor'" in p for p in found)


def test_problem_format_is_file_line_col_path_message() -> None:
    found = problems(FIGURE1.replace("asn: 64502", "asn: -3"))
    line = line_of(FIGURE1, "asn: 64502")
    col = FIGURE1.splitlines()[line - 1].index("64502") + 1
    assert found == [f"t.yaml:{line}:{col}: isps.ispb.asn: -3 is less than the minimum of 1"]


def test_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        loader.load(tmp_path / "nope.yaml")
    assert "cannot read the file" in str(exc.value)


def test_document_must_be_a_mapping() -> None:
    assert "a topology is a YAML mapping" in problems("- just\n- a list\n")[0]


def test_a_known_key_with_a_bad_value_is_one_problem_not_also_an_unknown_key() -> None:
    text = FIGURE1.replace("    hosts: [h1]\n", "    hosts: [h1]\n    mobility: {binding_lifetime_s: 6}\n", 1)
    line = line_of(text, "binding_lifetime_s: 6")
    assert problems(text) == [f"t.yaml:{line}:36: sites.site.mobility.binding_lifetime_s: 6 is not a multiple"
                              " of 4"]
