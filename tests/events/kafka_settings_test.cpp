// Unit tests for KafkaSettings -> librdkafka configuration.
#include "events/kafka_settings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace runbot::events {
namespace {

using ::testing::HasSubstr;

TEST(KafkaSettings, DefaultsAreAccepted) {
  KafkaSettings s;
  s.brokers = "127.0.0.1:9092";
  EXPECT_TRUE(check_kafka_settings(s));
  EXPECT_EQ(s.topics.jobs, "runbot.jobs");
  EXPECT_EQ(s.topics.events, "runbot.events");
  EXPECT_EQ(s.topics.cluster_events, "runbot.cluster-events");
}

TEST(KafkaSettings, UnknownPropertyIsNamed) {
  KafkaSettings s;
  s.brokers = "127.0.0.1:9092";
  s.properties["sasl.mechanismz"] = "PLAIN";
  auto st = check_kafka_settings(s);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, bot::Errc::invalid_argument);
  EXPECT_THAT(st.error().message, HasSubstr("kafka property 'sasl.mechanismz' rejected"));
}

TEST(KafkaSettings, InvalidValueIsNamed) {
  KafkaSettings s;
  s.brokers = "127.0.0.1:9092";
  s.properties["security.protocol"] = "carrier-pigeon";
  auto st = check_kafka_settings(s);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr("'security.protocol'"));

  s.properties = {{"enable.ssl.certificate.verification", "maybe"}};
  st = check_kafka_settings(s);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr("enable.ssl.certificate.verification"));
}

TEST(KafkaSettings, EmptyBrokersAreRejected) {
  KafkaSettings s;
  auto st = check_kafka_settings(s);
  ASSERT_FALSE(st);
  EXPECT_THAT(st.error().message, HasSubstr("bootstrap.servers"));
}

}  // namespace
}  // namespace runbot::events
