"""The version and status endpoints and the auth gate, through Flask's test client."""

from conftest import TOKEN

from nbflask.clock import parse_isoformat


def test_version_is_public(anonymous):
    response = anonymous.get("/api")
    assert response.status_code == 200
    assert response.get_json()["version"]


def test_status_needs_a_token(anonymous):
    response = anonymous.get("/api/status")
    assert response.status_code == 403
    assert set(response.get_json()) == {"message", "reason"}


def test_status_reports_activity(client):
    body = client.get("/api/status").get_json()
    assert set(body) == {"started", "last_activity", "kernels", "connections"}
    assert body["started"].endswith("Z")


def test_token_header_and_query(anonymous):
    assert anonymous.get("/api/status", headers={"Authorization": f"token {TOKEN}"}).status_code == 200
    assert anonymous.get(f"/api/status?token={TOKEN}").status_code == 200
    assert anonymous.get("/api/status?token=wrong").status_code == 403


def test_query_token_logs_a_browser_in_and_leaves_the_url(anonymous):
    response = anonymous.get(f"/tree?token={TOKEN}&sort=name")
    assert response.status_code == 302
    assert response.headers["Location"] == "/tree?sort=name"
    assert anonymous.get("/tree").status_code == 200


def test_pages_redirect_to_login(anonymous):
    response = anonymous.get("/tree/sub")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/nope")
    assert response.status_code == 404
    assert response.get_json()["message"]


def test_api_use_is_activity_but_status_polls_are_not(client):
    first = client.get("/api/status").get_json()["last_activity"]
    assert client.get("/api/status").get_json()["last_activity"] == first
    assert client.get("/api/contents").status_code == 200
    later = client.get("/api/status").get_json()["last_activity"]
    assert parse_isoformat(later) > parse_isoformat(first)


def test_anonymous_requests_are_not_activity(client, anonymous):
    first = client.get("/api/status").get_json()["last_activity"]
    assert anonymous.get("/api/contents").status_code == 403
    assert client.get("/api/status").get_json()["last_activity"] == first
