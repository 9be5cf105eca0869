"""Browser tests skip on a developer machine without Chromium but fail under CI."""

from __future__ import annotations

import pytest

import facebrain.report._browser as browser
from conftest import chromium_or_skip


@pytest.fixture
def no_chromium(monkeypatch):
    monkeypatch.setattr(browser, "find_chromium", lambda: None)


@pytest.mark.parametrize("value", ["true", "1", "TRUE", "yes"])
def test_missing_chromium_fails_under_ci(no_chromium, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="browser tests must run in CI"):
        chromium_or_skip()


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_missing_chromium_skips_elsewhere(no_chromium, monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        chromium_or_skip()


def test_found_chromium_is_returned(monkeypatch):
    monkeypatch.setattr(browser, "find_chromium", lambda: "/opt/chromium")
    monkeypatch.setenv("CI", "true")
    assert chromium_or_skip() == "/opt/chromium"
