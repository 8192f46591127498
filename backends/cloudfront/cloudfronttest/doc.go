// Package cloudfronttest is a faithful fake of the Amazon CloudFront API's
// invalidations, for tests of code that purges CloudFront, such as the
// cloudfront backend.
//
// [NewServer] starts an httptest TLS server that serves CreateInvalidation
// (POST /2020-05-31/distribution/{id}/invalidation) and GetInvalidation
// (GET /2020-05-31/distribution/{id}/invalidation/{id}) as CloudFront
// documents them:
//
//   - every request must carry a valid AWS Signature Version 4 for service
//     cloudfront (in the region of its credential scope: us-east-1, or the
//     configured region the SDK signs for when given an endpoint), made
//     with the server's credentials
//     ([Server.Credentials], [Server.AWSConfig]); a bad one is answered 403
//     SignatureDoesNotMatch (an unknown key InvalidClientTokenId) in
//     CloudFront's error XML;
//   - the body must be an InvalidationBatch in CloudFront's namespace, its
//     Quantity must match its Items (InconsistentQuantities), and each path
//     must begin with "/", hold no unencoded unsafe character, a "*" only at
//     its end, and at most 4,000 characters (InvalidArgument);
//   - a CallerReference sent again with the same paths is answered with the
//     earlier invalidation and recorded in [Server.Ignored] (CloudFront
//     invalidates nothing new); with other paths, 409
//     InvalidationBatchAlreadyExists;
//   - the distribution's invalidations in progress may hold at most 3,000
//     individual and 15 wildcard paths (paths ending in "*"; a "#tag" item
//     is never a wildcard): one more is answered 400
//     TooManyInvalidationsInProgress, and a batch larger than the limits 413
//     BatchTooLarge. Each invalidation stays InProgress for the delay of
//     [WithCompletionDelay], then is Completed.
//
// [Server.FailNext] injects error answers by status (5xx, AccessDenied)
// ([Server.FailNextOn] and [Server.FailNextCodeOn] into GetInvalidation too)
// and [Server.FailNextCode] with a chosen code (Throttling,
// TooManyInvalidationsInProgress), [Server.Hold] holds requests, and
// [Server.Paths], [Server.Invalidations] and [Server.Calls] say what was
// received; [Server.Reset] starts over.
//
//	srv := cloudfronttest.NewServer(cloudfronttest.WithCompletionDelay(0))
//	t.Cleanup(srv.Close)
//	b, _ := cloudfront.New(ctx, cloudfront.WithDistribution(srv.Distribution()),
//		cloudfront.WithAWSConfig(srv.AWSConfig()), cloudfront.WithEndpoint(srv.URL()))
//	// ... purge, then:
//	require.Equal(t, []string{"/posts/1"}, srv.Paths())
//
// Like httptest, [NewServer], its options and FailNext panic on misuse (a
// nil option, an invalid value): a mistake in the test, not in the code
// under test.
package cloudfronttest
