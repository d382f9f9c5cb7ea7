// A request message that does not parse (bytes that are no protobuf message of
// the method's request type, or a string field that is not UTF-8) reaches no
// handler: gRPC's unary callback API then answers UNIMPLEMENTED with no
// message, which tells the client the method does not exist. This server
// interceptor turns that answer into INVALID_ARGUMENT with a message that
// says so (without repeating any of the bytes).
#ifndef FRIKORT_SERVER_UNPARSED_H_
#define FRIKORT_SERVER_UNPARSED_H_

#include <memory>

#include "grpcpp/support/server_interceptor.h"

namespace frikort::server {

// The message the client sees for a request that does not parse.
inline constexpr const char kUnparsedRequestMessage[] =
    "request: the message does not parse as this method's request (not a protobuf message of "
    "its type, or a string field that is not valid UTF-8)";

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
UnparsedRequestInterceptorFactory();

}  // namespace frikort::server

#endif  // FRIKORT_SERVER_UNPARSED_H_
