"""Camera URLs in logs, status and `station check` output never show a password, also one that
is not URL-encoded (operators paste the camera's password as it is, or ${CAMERA_PASSWORD} holds
one with / # ? @ in it), one in a query parameter, or one in a Dahua-style path."""

from __future__ import annotations

import pytest

from inspect_stations.urls import mask_url

SECRET = "s3cret"


@pytest.mark.parametrize(
    "url, shown",
    [
        ("rtsp://admin:s3cret@cam1.test/stream1", "rtsp://admin:***@cam1.test/stream1"),
        ("rtsp://admin:ab/s3cret@cam1.test/stream1", "rtsp://admin:***@cam1.test/stream1"),
        ("rtsp://admin:ab#s3cret@cam1.test/stream1", "rtsp://admin:***@cam1.test/stream1"),
        ("rtsp://admin:ab?s3cret@cam1.test/stream1", "rtsp://admin:***@cam1.test/stream1"),
        ("rtsp://admin:p@s3cret@cam1.test/stream1", "rtsp://admin:***@cam1.test/stream1"),
        ("rtsp://admin:Xy/9s3cret#@cam1.test:554/s", "rtsp://admin:***@cam1.test:554/s"),
        ("rtsp://:s3cret@cam1.test/", "rtsp://:***@cam1.test/"),
        (
            "rtsp://cam1.test:554/user=admin_password=s3cret_channel=1_stream=0.sdp",
            "rtsp://cam1.test:554/user=admin_password=***_channel=1_stream=0.sdp",
        ),
        ("rtsp://admin@cam1.test/stream?pw=s3cret", "rtsp://admin@cam1.test/stream?pw=***"),
        (
            "http://cam1.test/video.cgi?user=admin&pass=s3cret&res=1",
            "http://cam1.test/video.cgi?user=admin&pass=***&res=1",
        ),
        ("http://cam/x?access_token=s3cret/x#y", "http://cam/x?access_token=***"),
        ("http://cam/x?api_key=s3cret;ch=1", "http://cam/x?api_key=***;ch=1"),
    ],
)
def test_a_password_is_masked_however_it_is_written(url, shown):
    masked = mask_url(url)
    assert masked == shown and SECRET not in masked


def test_what_holds_no_secret_is_left_alone():
    for url in (
        "/videos/clip.avi",
        "rtsp://cam1.test:554/Streaming/Channels/101",
        "http://cam.local/mjpg/video.mjpg?resolution=640x480&fps=10",
        "rtsp://operator@cam1.test/stream1",
    ):
        assert mask_url(url) == url
    assert mask_url(None) is None


def test_station_check_masks_a_password_from_the_environment(tmp_path, tiny_model, monkeypatch):
    """The README advises url = "rtsp://admin:${CAMERA_PASSWORD}@..."; a password with / and #
    in it used to be shown in clear by `station check` (and in every camera log line)."""
    from click.testing import CliRunner

    from inspect_core.cli import cli
    from inspect_core.plugin_api.manager import load_cli_plugins
    from inspect_stations.testing import free_port, recipe_file

    monkeypatch.setenv("CAMERA_PASSWORD", "Xy/9s3cret#")
    recipe_file(tmp_path, tiny_model)
    (tmp_path / "cam.toml").write_text(
        '[station]\nname = "cam"\nrecipe_file = "tiny.toml"\n[source]\ntype = "camera"\n'
        f'url = "rtsp://admin:${{CAMERA_PASSWORD}}@127.0.0.1:{free_port()}/stream1"\n'
    )
    if "station" not in cli.commands:
        load_cli_plugins(cli)
    res = CliRunner().invoke(cli, ["station", "check", str(tmp_path / "cam.toml")])
    assert res.exit_code == 0, res.output
    assert "admin:***@127.0.0.1" in res.output and SECRET not in res.output
