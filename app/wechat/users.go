package wechat

import (
	"context"
	"fmt"
	"net/url"
)

// MaxBatchGet is the most openids user/info/batchget takes in one call.
const MaxBatchGet = 100

// UserList is one page of cgi-bin/user/get.
type UserList struct {
	Total int `json:"total"`
	Count int `json:"count"`
	Data  struct {
		OpenIDs []string `json:"openid"`
	} `json:"data"`
	NextOpenID string `json:"next_openid"`
}

// Done reports whether this page is the last: fewer ids than a full page, or no
// next_openid. (WeChat's last page may have count 0 and no data.)
func (l *UserList) Done() bool {
	return l.Count == 0 || l.NextOpenID == "" || l.Count < 10000
}

// UserInfo is a follower's record as user/info returns it since 2021 (nickname,
// avatar, sex and region are no longer given).
type UserInfo struct {
	Subscribe      int    `json:"subscribe"`
	OpenID         string `json:"openid"`
	Language       string `json:"language"`
	SubscribeTime  int64  `json:"subscribe_time"`
	UnionID        string `json:"unionid"`
	Remark         string `json:"remark"`
	GroupID        int    `json:"groupid"`
	TagIDList      []int  `json:"tagid_list"`
	SubscribeScene string `json:"subscribe_scene"`
	QRScene        int64  `json:"qr_scene"`
	QRSceneStr     string `json:"qr_scene_str"`
}

// UserList returns a page of the official account's followers starting after
// nextOpenID ("" for the first page), at most 10,000 ids.
func (c *Client) UserList(ctx context.Context, app App, nextOpenID string) (*UserList, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	q := url.Values{}
	if nextOpenID != "" {
		q.Set("next_openid", nextOpenID)
	}
	var r struct {
		apiStatus
		UserList
	}
	if err := c.withToken(ctx, app, call{endpoint: "cgi-bin/user/get", query: q}, &r); err != nil {
		return nil, err
	}
	return &r.UserList, nil
}

// UserInfo returns one user's record; lang is zh_CN, zh_TW or en ("" for zh_CN).
func (c *Client) UserInfo(ctx context.Context, app App, openID, lang string) (*UserInfo, error) {
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	if lang == "" {
		lang = "zh_CN"
	}
	q := url.Values{"openid": {openID}, "lang": {lang}}
	var r struct {
		apiStatus
		UserInfo
	}
	if err := c.withToken(ctx, app, call{endpoint: "cgi-bin/user/info", query: q}, &r); err != nil {
		return nil, err
	}
	return &r.UserInfo, nil
}

// UserInfoBatch returns the records of up to MaxBatchGet users, in WeChat's order.
func (c *Client) UserInfoBatch(ctx context.Context, app App, openIDs []string, lang string) ([]UserInfo, error) {
	if len(openIDs) > MaxBatchGet {
		return nil, fmt.Errorf("wechat: batchget %d openids: at most %d per call", len(openIDs), MaxBatchGet)
	}
	if len(openIDs) == 0 {
		return nil, nil
	}
	ctx, cancel := c.withDeadline(ctx)
	defer cancel()
	if lang == "" {
		lang = "zh_CN"
	}
	type item struct {
		OpenID string `json:"openid"`
		Lang   string `json:"lang"`
	}
	list := make([]item, len(openIDs))
	for i, id := range openIDs {
		list[i] = item{id, lang}
	}
	var r struct {
		apiStatus
		List []UserInfo `json:"user_info_list"`
	}
	body := map[string]any{"user_list": list}
	if err := c.withToken(ctx, app, call{endpoint: "cgi-bin/user/info/batchget", body: body}, &r); err != nil {
		return nil, err
	}
	return r.List, nil
}
