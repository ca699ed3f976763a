#include "tests/support/tls_test_ca.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace runbot::testing {

namespace {

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Bio = std::unique_ptr<BIO, Free>;

[[noreturn]] void fail(const char* step) { throw std::runtime_error(std::string("test CA: ") + step + " failed"); }

Key new_key() {
  Key k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!k) fail("EVP_PKEY_Q_keygen");
  return k;
}

void add_ext(X509* x, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ex = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (!ex) fail("X509V3_EXT_conf_nid");
  X509_add_ext(x, ex, -1);
  X509_EXTENSION_free(ex);
}

Cert new_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, bool ca, long serial) {
  Cert x(X509_new());
  if (!x) fail("X509_new");
  X509_set_version(x.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 2L * 24 * 3600);
  X509_set_pubkey(x.get(), key);
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("runbot tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
  X509_set_issuer_name(x.get(), issuer ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer ? issuer : x.get(), x.get(), nullptr, nullptr, 0);
  add_ext(x.get(), &ctx, NID_subject_key_identifier, "hash");
  if (ca) {
    add_ext(x.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(x.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(x.get(), &ctx, NID_key_usage, "critical,digitalSignature");
    add_ext(x.get(), &ctx, NID_ext_key_usage, "serverAuth");
    add_ext(x.get(), &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    add_ext(x.get(), &ctx, NID_authority_key_identifier, "keyid:always");
  }
  if (X509_sign(x.get(), issuer_key, EVP_sha256()) == 0) fail("X509_sign");
  return x;
}

std::string pem_of(X509* x) {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_X509(b.get(), x) != 1) fail("PEM_write_bio_X509");
  char* data = nullptr;
  const long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string pem_of(EVP_PKEY* k) {
  Bio b(BIO_new(BIO_s_mem()));
  if (!b || PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1) fail("PEM_write_bio_PrivateKey");
  char* data = nullptr;
  const long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("test CA: cannot write " + path);
}

}  // namespace

TestCa TestCa::make() {
  TestCa ca;
  std::string tmpl = (std::filesystem::temp_directory_path() / "runbot-tls-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) throw std::runtime_error("test CA: mkdtemp failed");
  ca.dir = tmpl;
  Key ca_key = new_key();
  Cert ca_cert = new_cert(ca_key.get(), "runbot test CA", nullptr, ca_key.get(), true, 1);
  Key server_key = new_key();
  Cert server_cert = new_cert(server_key.get(), "localhost", ca_cert.get(), ca_key.get(), false, 2);
  Key other_key = new_key();
  Cert other_cert = new_cert(other_key.get(), "unrelated test CA", nullptr, other_key.get(), true, 3);
  ca.ca_pem = pem_of(ca_cert.get());
  ca.cert_pem = pem_of(server_cert.get());
  ca.key_pem = pem_of(server_key.get());
  ca.ca_file = ca.dir + "/ca.pem";
  ca.cert_file = ca.dir + "/server.pem";
  ca.key_file = ca.dir + "/server-key.pem";
  ca.other_ca_file = ca.dir + "/other-ca.pem";
  write_file(ca.ca_file, ca.ca_pem);
  write_file(ca.cert_file, ca.cert_pem);
  write_file(ca.key_file, ca.key_pem);
  write_file(ca.other_ca_file, pem_of(other_cert.get()));
  return ca;
}

TestCa::TestCa(TestCa&& other) noexcept
    : dir(std::move(other.dir)),
      ca_file(std::move(other.ca_file)),
      cert_file(std::move(other.cert_file)),
      key_file(std::move(other.key_file)),
      ca_pem(std::move(other.ca_pem)),
      cert_pem(std::move(other.cert_pem)),
      key_pem(std::move(other.key_pem)),
      other_ca_file(std::move(other.other_ca_file)) {
  other.dir.clear();
}

TestCa::~TestCa() {
  if (dir.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace runbot::testing
