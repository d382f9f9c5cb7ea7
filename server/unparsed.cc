#include "server/unparsed.h"

#include "grpcpp/support/status.h"

namespace frikort::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

class UnparsedRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit UnparsedRequestInterceptor(bool unary) : unary_(unary) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    // A unary request that was received but could not be deserialized shows
    // as no message here. (On a stream the same null also means the client
    // half-closed, so streams are left alone.)
    if (unary_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsed_ = true;
    }
    if (unparsed_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      // gRPC's own answer for it; a handler never answers UNIMPLEMENTED
      // without a message.
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(
            grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, kUnparsedRequestMessage));
      }
    }
    methods->Proceed();
  }

 private:
  const bool unary_;
  bool unparsed_ = false;
};

class UnparsedRequestFactory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new UnparsedRequestInterceptor(info->type() ==
                                          grpc::experimental::ServerRpcInfo::Type::UNARY);
  }
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
UnparsedRequestInterceptorFactory() {
  return std::make_unique<UnparsedRequestFactory>();
}

}  // namespace frikort::server
