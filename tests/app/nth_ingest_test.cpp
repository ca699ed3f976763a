#include "bot/app/nth_ingest.h"

#include <gtest/gtest.h>

namespace runbot::app {
namespace {

const std::string kSecret = "s3cret-s3cret-s3cret";
const std::string kNotice =
    R"({"EventID":"spot-itn-abc","Kind":"SPOT_ITN","Monitor":"SPOT_ITN_MONITOR","Description":"Spot ITN received",)"
    R"("State":"","NodeName":"ip-10-0-1-17.eu-west-1.compute.internal","InstanceID":"i-0123","InstanceType":"m5.large",)"
    R"("AvailabilityZone":"eu-west-1a","StartTime":"2026-11-26T12:05:00Z","EndTime":"2026-11-26T12:05:00Z"})";

struct Produced {
  std::string key;
  std::string value;
};

common::HttpRequest post(std::string body, std::optional<std::string> secret) {
  common::HttpRequest r;
  r.method = "POST";
  r.path = r.target = NthIngest::kPath;
  r.body = std::move(body);
  if (secret) r.headers[NthIngest::kSecretHeader] = *secret;
  return r;
}

TEST(NthIngest, AcceptedNoticeIsProducedAsReceivedKeyedByNode) {
  std::vector<Produced> produced;
  NthIngest ingest(kSecret, [&](std::string k, std::string v, std::function<void(bot::Status)> done) {
    produced.push_back({k, v});
    done(bot::ok());
  });
  auto r = ingest.handle(post(kNotice, kSecret));
  EXPECT_EQ(r.status, 202);
  EXPECT_NE(r.body.find("spot-itn-abc"), std::string::npos);
  ASSERT_EQ(produced.size(), 1u);
  EXPECT_EQ(produced[0].key, "ip-10-0-1-17.eu-west-1.compute.internal");
  EXPECT_EQ(produced[0].value, kNotice);
}

TEST(NthIngest, WrongOrMissingSecretIs401AndNothingIsProduced) {
  int produced = 0;
  NthIngest ingest(kSecret, [&](std::string, std::string, std::function<void(bot::Status)>) { ++produced; });
  EXPECT_EQ(ingest.handle(post(kNotice, std::nullopt)).status, 401);
  EXPECT_EQ(ingest.handle(post(kNotice, "s3cret-s3cret-s3creX")).status, 401);
  EXPECT_EQ(ingest.handle(post(kNotice, kSecret + "x")).status, 401);
  EXPECT_EQ(produced, 0);
  EXPECT_EQ(ingest.rejected(), 3u);
}

TEST(NthIngest, ABodyThatIsNotANoticeIs400WithTheReason) {
  int produced = 0;
  NthIngest ingest(kSecret, [&](std::string, std::string, std::function<void(bot::Status)>) { ++produced; });
  auto r = ingest.handle(post("{\"text\":\"hello\"}", kSecret));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("not an aws-node-termination-handler notice"), std::string::npos);
  EXPECT_EQ(ingest.handle(post("{truncated", kSecret)).status, 400);
  EXPECT_EQ(produced, 0);
}

}  // namespace
}  // namespace runbot::app
