#pragma once
// Private to adapters/common's .cpp files (it brings Asio in): name resolution with a deadline,
// shared by HttpsClient and WebSocketClient.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace runbot::common::detail {

inline bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  (void)boost::asio::ip::make_address(host, ec);
  return !ec;
}

// The endpoints of host:port: at once for an IP literal, else from the resolver, which has no
// deadline of its own: a timer cancels it at `deadline` (the error is then operation_aborted).
inline boost::asio::awaitable<std::tuple<boost::system::error_code, boost::asio::ip::tcp::resolver::results_type>>
resolve(boost::asio::io_context& io, std::string host, std::uint16_t port,
        std::chrono::steady_clock::time_point deadline) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  if (is_ip_literal(host)) {
    co_return std::tuple{boost::system::error_code{},
                         tcp::resolver::results_type::create(tcp::endpoint(asio::ip::make_address(host), port), host,
                                                             std::to_string(port))};
  }
  auto resolver = std::make_shared<tcp::resolver>(io);
  auto timer = std::make_shared<asio::steady_timer>(io, deadline);
  timer->async_wait([resolver](boost::system::error_code ec) {
    if (!ec) resolver->cancel();
  });
  auto [ec, results] = co_await resolver->async_resolve(host, std::to_string(port),
                                                        asio::as_tuple(asio::use_awaitable));
  timer->cancel();
  co_return std::tuple{ec, std::move(results)};
}

}  // namespace runbot::common::detail
