#pragma once
// Private to adapters/common's .cpp files: the Asio SSL context behind TlsContext.
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "adapters/common/tls_context.h"

namespace runbot::common {

struct TlsContext::Impl {
  Impl() : ctx(boost::asio::ssl::context::tls_client) {}
  boost::asio::ssl::context ctx;
  std::string ca_file;
};

}  // namespace runbot::common
