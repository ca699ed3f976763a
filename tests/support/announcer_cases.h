#pragma once
// The neutral messages of every notification kind, built by the real announcer from fixed inputs
// (Slack-style user ids, a fixed clock, one app, one environment): the shared input of every
// renderer's golden-file tests.
#include <map>
#include <string>

#include "bot/announcer.h"

namespace runbot::testing {

using namespace std::chrono_literals;

struct AnnouncerFixture {
  bot::TimePoint now = *bot::parse_time("2026-11-26T12:00:00Z");
  bot::AppSpec app;
  bot::Environment env;
  bot::UserId alice{"U024BE7LH"};
  bot::UserId bob{"U0G9QF9C6"};

  AnnouncerFixture() {
    app.name = bot::AppName{"front-end"};
    app.repo = "acme/front-end";
    app.team = bot::TeamName{"web"};
    app.rate_per_hour = bot::Money::dollars(0.625);
    app.suspended_rate_per_hour = bot::Money::dollars(0.05);
    env.id = bot::EnvId{"front-end-pr-123"};
    env.app = app.name;
    env.pr = 123;
    env.namespace_name = "front-end-pr-123";
    env.state = bot::EnvState::ready;
    env.owner = alice;
    env.requester = bob;
    env.team = app.team;
    env.url = "https://front-end-pr-123.preview.example.com";
    env.image = "sha-4f2a9c1";
    env.ttl = 8h;
    env.created_at = env.metered_until = env.last_activity = now - 6min;
    env.ready_at = now - 1min;
    env.expires_at = now + 8h - 1min;
    env.active_time = 6min;
    env.nodes = {bot::NodeName{"ip-10-0-1-17"}};
  }

  bot::ClusterEvent spot() const {
    bot::ClusterEvent e;
    e.kind = bot::ClusterEventKind::spot_interruption;
    e.source = "aws-node-termination-handler";
    e.node = {bot::NodeName{"ip-10-0-1-17"}, bot::CapacityType::spot, "m5.large", "eu-west-1a"};
    e.time = now;
    e.deadline = now + 2min;
    return e;
  }
};

std::map<std::string, bot::Message> announcer_cases();

}  // namespace runbot::testing
