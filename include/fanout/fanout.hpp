// fanout/fanout.hpp — every fanout facility.
#pragma once

#include "fanout/async_map.hpp"
#include "fanout/callable.hpp"
#include "fanout/error.hpp"
#include "fanout/map_options.hpp"
#include "fanout/map_stream.hpp"
#include "fanout/offload.hpp"
#include "fanout/outcome.hpp"
#include "fanout/race.hpp"
#include "fanout/run.hpp"
#include "fanout/schedule.hpp"
#include "fanout/sleep.hpp"
#include "fanout/sync_map.hpp"
#include "fanout/task.hpp"
#include "fanout/task_group.hpp"
#include "fanout/timeout.hpp"
#include "fanout/timer.hpp"
