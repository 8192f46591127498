// Package cloudfront purges Amazon CloudFront distributions through
// invalidations, with the AWS SDK for Go v2.
package cloudfront
