// Shared by the issuance job tests (tests/jobs/issuance_*_test.cc): the caps
// and the refund minimum they check against, and their fixture on the real
// register (tests/jobs/job_fixture.h).
#ifndef FRIKORT_TESTS_JOBS_ISSUANCE_FIXTURE_H_
#define FRIKORT_TESTS_JOBS_ISSUANCE_FIXTURE_H_

#include "absl/time/civil_time.h"
#include "tests/jobs/job_fixture.h"

namespace frikort::jobs::testing {

constexpr Ore kCap2024 = 316500;      // 3165 NOK, one cap
constexpr Ore kTak1Cap2019 = 236900;  // 2369 NOK
constexpr Ore kTak2Cap2019 = 208500;  // 2085 NOK
constexpr Ore kMinimum2019 = 20000;   // 200 NOK

using Day = absl::CivilDay;

class IssuanceTest : public JobTest {};

}  // namespace frikort::jobs::testing

#endif  // FRIKORT_TESTS_JOBS_ISSUANCE_FIXTURE_H_
