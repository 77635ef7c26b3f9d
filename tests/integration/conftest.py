from tests.support.fixtures import *  # noqa: F401,F403
from tests.support.s3_fixtures import *  # noqa: F401,F403
