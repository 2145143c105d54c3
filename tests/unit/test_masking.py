"""Masking rules on small strings, and on the real corpora (no owner address survives)."""

from __future__ import annotations

import pytest

from phishlens.training.data.dedup import (
    MASKING_RULES,
    URL_TOKEN,
    mask_owner_address,
    mask_spamassassin_obfuscations,
    mask_text,
    mask_urls,
    normalise_for_uid,
    normalise_whitespace,
    rules_for,
    strip_html,
)


def test_rules_are_documented():
    names = [r.name for r in MASKING_RULES]
    assert len(names) == len(set(names))
    for r in MASKING_RULES:
        assert r.pattern and r.reason and r.styles


def test_owner_address_domain_and_name():
    t = "Dear jose, your jose@monkey.org mailbox at monkey.org is full. JOSE@MONKEY.ORG username@domain.com"
    out = mask_owner_address(t)
    assert "jose" not in out.lower() and "monkey" not in out.lower() and "domain.com" not in out
    assert out.count("user@example.com") == 3 and "example.com is full" in out
    assert mask_owner_address("Josephine and josé") == "Josephine and josé"  # whole word only


def test_spamassassin_obfuscations():
    t = "To: zzzz@spamassassin.taint.org, yyyy@netnoteinc.com list zzzzteana http://iiu.taint.org/x"
    out = mask_spamassassin_obfuscations(t)
    assert "zzzz" not in out and "yyyy" not in out and "taint" not in out
    assert out.startswith("To: user@example.com, user@example.com list user")


def test_url_representations_become_one_token():
    assert mask_urls("go [http://a.b/c?d=1] now") == f"go {URL_TOKEN} now"
    assert mask_urls("click [here](https://x.y/z) please") == f"click here {URL_TOKEN} please"
    assert mask_urls("see www.foo.com/a.") == f"see {URL_TOKEN}."
    assert mask_urls("Click URL to verify", "email_nazario_recent") == f"Click {URL_TOKEN} to verify"
    assert mask_urls("Click URL to verify") == "Click URL to verify"  # only Nazario-recent's token
    ls = "go to http : / / www . cog . brown . edu / x for more"
    assert mask_urls(ls, "email_lingspam") == f"go to {URL_TOKEN} for more"


def test_html_stripped_and_entities_unescaped():
    t = (
        '<html><head><style>a{color:red}</style></head><body><TABLE><TR><TD class="x">Hello&nbsp;there'
        "</TD></TR></TABLE><p>Pay &amp; verify &#8217;now&#8217;</p><!-- c --></body></html>"
    )
    out = normalise_whitespace(strip_html(t))
    assert "<" not in out and "&nbsp" not in out and "color" not in out
    assert "Hello there" in out and "Pay & verify \u2019now\u2019" in out
    # text that merely looks like markup survives
    assert (
        strip_html("Robert <kre@munnari.OZ.AU> wrote: if a < b then")
        == "Robert <kre@munnari.OZ.AU> wrote: if a < b then"
    )
    assert strip_html("truncated <TD ali").strip() == "truncated"
    assert "font-size" not in strip_html("font-x { font-size: 75%; font-family: verdana; } Dear client")


def test_whitespace():
    assert normalise_whitespace("  a\r\n\r\n\r\n\r\nb \t c\u00a0\u00a0d\u200b  \n e  ") == "a\n\nb c d\ne"


def test_mask_text_scopes():
    assert [r.name for r in rules_for("url")] == [r.name for r in MASKING_RULES if "url" in r.styles]
    assert mask_text("http://jose.example.com/a  ", "url") == "http://jose.example.com/a"  # URLs untouched
    sms = mask_text("Win now http://x.co ", "sms")
    assert sms == "Win now http://x.co"
    em = mask_text("Hi jose,\n\n\nclick http://evil.example/login", "email", "email_greco_human")
    assert em == f"Hi user,\n\nclick {URL_TOKEN}"


def test_dedup_normalisation():
    assert normalise_for_uid("Click  HTTP://a.b/x now", "sms") == normalise_for_uid(
        "click https://c.d now", "sms"
    )
    assert normalise_for_uid("HTTP://A.b/x/", "url") == normalise_for_uid("http://a.b/x", "url")
    assert normalise_for_uid("http://a.b/x", "url") != normalise_for_uid("https://a.b/x", "url")


@pytest.mark.data
def test_no_owner_address_left_in_any_record(splits):
    for src, parts in splits.by_source.items():
        for recs in parts.values():
            for r in recs:
                low = r.text.lower()
                assert "jose@monkey.org" not in low and "monkey.org" not in low, (src, r.text[:200])
                if r.style == "email":
                    assert "taint.org" not in low and "zzzz" not in low, (src, r.text[:200])
                    assert "&nbsp" not in low, (src, r.text[:200])
