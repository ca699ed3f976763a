#include "adapters/common/tls_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "adapters/common/tls_context_impl.h"

namespace runbot::common {

namespace ssl = boost::asio::ssl;

bot::Result<std::shared_ptr<TlsContext>> TlsContext::create(const std::string& ca_file) {
  auto impl = std::make_unique<Impl>();
  impl->ca_file = ca_file;
  boost::system::error_code ec;
  impl->ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                            ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                        ec);
  if (ec) return bot::make_error(bot::Errc::internal, "tls: cannot set options: " + ec.message());
  impl->ctx.set_verify_mode(ssl::verify_peer, ec);
  if (ec) return bot::make_error(bot::Errc::internal, "tls: cannot enable verification: " + ec.message());
  if (ca_file.empty()) {
    impl->ctx.set_default_verify_paths(ec);
    if (ec) return bot::make_error(bot::Errc::internal, "tls: cannot load the system CA store: " + ec.message());
  } else {
    impl->ctx.load_verify_file(ca_file, ec);
    if (ec) {
      return bot::make_error(bot::Errc::invalid_argument,
                             "tls: cannot load CA bundle '" + ca_file + "': " + ec.message());
    }
  }
  // Connection reuse is per host in the clients; session resumption saves a round trip on
  // reconnects without weakening anything.
  SSL_CTX_set_session_cache_mode(impl->ctx.native_handle(), SSL_SESS_CACHE_CLIENT);
  return std::shared_ptr<TlsContext>(new TlsContext(std::move(impl)));
}

TlsContext::TlsContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsContext::~TlsContext() = default;

const std::string& TlsContext::ca_file() const { return impl_->ca_file; }

}  // namespace runbot::common
