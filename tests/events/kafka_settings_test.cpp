// Unit tests for KafkaSettings -> librdkafka configuration.
#include "events/kafka_settings.h"

#include <librdkafka/rdkafka.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "events/rdkafka_util.h"

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

std::string conf_value(rd_kafka_conf_t* conf, const char* name) {
  char buf[256];
  size_t size = sizeof buf;
  if (rd_kafka_conf_get(conf, name, buf, &size) != RD_KAFKA_CONF_OK) return "?";
  return buf;
}

TEST(KafkaSettings, ConsumerTuningDefaultsApplyUnlessThePropertiesSayOtherwise) {
  KafkaSettings s;
  s.brokers = "127.0.0.1:9092";
  auto conf = detail::make_conf(s, detail::consumer_properties(s, "g"), detail::consumer_defaults());
  ASSERT_TRUE(conf) << conf.error().message;
  EXPECT_EQ(conf_value(conf->get(), "queued.max.messages.kbytes"), "16384");
  EXPECT_EQ(conf_value(conf->get(), "fetch.wait.max.ms"), "100");
  s.properties["queued.max.messages.kbytes"] = "65536";
  s.properties["enable.auto.offset.store"] = "true";  // an invariant: runbot's value wins
  conf = detail::make_conf(s, detail::consumer_properties(s, "g"), detail::consumer_defaults());
  ASSERT_TRUE(conf) << conf.error().message;
  EXPECT_EQ(conf_value(conf->get(), "queued.max.messages.kbytes"), "65536");
  EXPECT_EQ(conf_value(conf->get(), "enable.auto.offset.store"), "false");
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
