"""Every table of every context on one metadata, for migrations and test fixtures."""

from omnicommerce.carts import models as carts_models  # noqa: F401
from omnicommerce.catalog import models as catalog_models  # noqa: F401
from omnicommerce.customers import models as customers_models  # noqa: F401
from omnicommerce.customers.privacy import models as privacy_models  # noqa: F401
from omnicommerce.customers.segments import models as segments_models  # noqa: F401
from omnicommerce.engagement import models as engagement_models  # noqa: F401
from omnicommerce.fulfillment import models as fulfillment_models  # noqa: F401
from omnicommerce.integrations import models as integrations_models  # noqa: F401
from omnicommerce.inventory import models as inventory_models  # noqa: F401
from omnicommerce.orders import models as orders_models  # noqa: F401
from omnicommerce.platform import auth, channels, idempotency, outbox  # noqa: F401
from omnicommerce.platform import scheduler as scheduler_models  # noqa: F401
from omnicommerce.platform.staff import models as staff_models  # noqa: F401
from omnicommerce.pricing import models as pricing_models  # noqa: F401
