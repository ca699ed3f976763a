#pragma once
// TestCa: a throwaway PKI for loopback TLS tests, generated at test time with the OpenSSL 3 API:
// a self-signed CA (EC P-256, CA:TRUE) and a server certificate it signs for DNS:localhost and
// IP:127.0.0.1 (serverAuth), valid from an hour ago for two days. PEM files are written to a fresh
// private temporary directory, removed again by the destructor.
//
// Errors: make() throws std::runtime_error naming the OpenSSL step that failed (test support only).
#include <string>

namespace runbot::testing {

class TestCa {
 public:
  static TestCa make();
  ~TestCa();
  TestCa(TestCa&& other) noexcept;
  TestCa& operator=(TestCa&&) = delete;
  TestCa(const TestCa&) = delete;
  TestCa& operator=(const TestCa&) = delete;

  std::string dir;        // the temporary directory
  std::string ca_file;    // ca.pem: trust anchor for clients
  std::string cert_file;  // server.pem: the server certificate
  std::string key_file;   // server-key.pem: its private key
  std::string ca_pem, cert_pem, key_pem;
  // A second, unrelated CA (other-ca.pem): clients trusting it must reject the server.
  std::string other_ca_file;

 private:
  TestCa() = default;
};

}  // namespace runbot::testing
