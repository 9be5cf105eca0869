"""Browser tests skip on a developer machine without Chromium but fail under CI.

The ``chromium`` fixture (tests/conftest.py) is requested after patching
``find_chromium``; its skip or failure propagates out of ``getfixturevalue``.
"""

from __future__ import annotations

import pytest

import facebrain.report._browser as browser


@pytest.fixture
def no_chromium(monkeypatch):
    monkeypatch.setattr(browser, "find_chromium", lambda: None)


@pytest.mark.parametrize("value", ["true", "1", "TRUE", "yes"])
def test_missing_chromium_fails_under_ci(no_chromium, monkeypatch, request, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="browser tests must run in CI"):
        request.getfixturevalue("chromium")


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_missing_chromium_skips_elsewhere(no_chromium, monkeypatch, request, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        request.getfixturevalue("chromium")


def test_found_chromium_is_returned(monkeypatch, request):
    monkeypatch.setattr(browser, "find_chromium", lambda: "/opt/chromium")
    monkeypatch.setenv("CI", "true")
    assert request.getfixturevalue("chromium") == "/opt/chromium"
