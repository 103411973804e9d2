from omnicommerce.platform.outbox import load_subscribers


def test_subscribers_of_contexts_and_of_their_sub_packages_are_all_registered() -> None:
    modules = {s.handler.__module__ for s in load_subscribers()}
    assert "omnicommerce.fulfillment.subscribers" in modules
    assert "omnicommerce.customers.subscribers" in modules
    assert "omnicommerce.customers.segments.subscribers" in modules  # a sub-package's own
