from omnicommerce.platform.auth import Principal, reach


def test_reach_picks_the_narrowest_binding() -> None:
    assert reach(None) == ("all", None)
    assert reach(Principal("api_key", "k1")) == ("all", None)
    assert reach(Principal("api_key", "k2", channel="web")) == ("channel", "web")
    assert reach(Principal("api_key", "k3", channel="pos", location="store-007")) == ("location", "store-007")
    customer = Principal("customer", "cus_1", channel="app", customer_id="cus_1")
    assert reach(customer) == ("customer", "cus_1")
