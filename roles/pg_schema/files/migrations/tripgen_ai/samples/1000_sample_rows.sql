-- tripgen_ai sample rows (seed 002, section 7). Applied only with sample_data: true.
-- Differs from the seed in two places, both needed for it to run: the recommendation JSON, built
-- with ||, is cast to jsonb; profile_hash is encode(sha256(...), 'hex') (64 characters, not 66).
-- 테스트 AI 작업 데이터
INSERT INTO ai_schema.ai_jobs (job_type, status, payload, progress, current_step) VALUES
('SCHEDULE_GENERATION', 'COMPLETED', '{"trip_id":"trip-001","preferences":["SIGHTSEEING","CULTURE"],"transport_mode":"PUBLIC"}', 100, 'completed'),
('SCHEDULE_GENERATION', 'PROCESSING', '{"trip_id":"trip-002","preferences":["NATURE","SPORTS"],"transport_mode":"CAR"}', 75, 'generating_places'),
('RECOMMENDATION_GENERATION', 'COMPLETED', '{"place_id":"LOC-001","user_profile":"active_tourist"}', 100, 'completed');

-- 테스트 생성된 일정 데이터
INSERT INTO ai_schema.ai_schedules (request_id, trip_id, status, schedule_data, generated_at) VALUES
((SELECT request_id FROM ai_schema.ai_jobs WHERE job_type = 'SCHEDULE_GENERATION' AND status = 'COMPLETED' LIMIT 1),
 'trip-001', 'COMPLETED',
 '{
   "trip_id": "trip-001",
   "schedules": [
     {
       "day": 1,
       "date": "2024-12-15",
       "city": "서울",
       "weather": {
         "condition": "Sunny",
         "min_temperature": -2.5,
         "max_temperature": 5.8,
         "icon": "sun"
       },
       "places": [
         {
           "place_id": "LOC-001",
           "place_name": "경복궁",
           "category": "TOURIST",
           "start_time": "09:00",
           "duration": 120,
           "transportation": {
             "type": "PUBLIC",
             "duration": 30,
             "distance": 5.2,
             "route": "지하철 3호선 경복궁역"
           },
           "health_consideration": {
             "rest_points": ["매표소 휴게실", "궁궐 내 벤치"],
             "accessibility": ["엘리베이터", "경사로"],
             "walking_distance": 2.1
           },
           "order": 1
         }
       ]
     }
   ],
   "metadata": {
     "generated_at": "2024-12-01T10:00:00Z",
     "ai_model": "gpt-4o",
     "generation_time_ms": 15420,
     "total_places": 6,
     "total_days": 4
   }
 }',
 CURRENT_TIMESTAMP);

-- 테스트 장소 추천 데이터
INSERT INTO ai_schema.ai_recommendations (place_id, profile_hash, recommendation_data) VALUES
('LOC-001', encode(sha256('{"age":28,"preferences":["SIGHTSEEING","CULTURE"],"health":"EXCELLENT"}'::bytea), 'hex'),
 ('{
   "place_id": "LOC-001",
   "recommendations": {
     "reasons": [
       "조선왕조의 대표적인 궁궐로 역사적 가치가 높음",
       "전통 건축미를 감상할 수 있는 최적의 장소",
       "교통 접근성이 우수하여 방문하기 편리함"
     ],
     "tips": {
       "description": "경복궁은 조선시대 정궁으로 웅장한 건축미와 역사적 의미를 동시에 경험할 수 있습니다.",
       "events": ["수문장 교대식 (10시, 14시, 15시)", "야간개장 (4-10월)"],
       "best_visit_time": "오전 9-11시 (관광객이 적고 사진촬영에 최적)",
       "estimated_duration": "2-3시간",
       "photo_spots": ["근정전", "경회루", "향원정"],
       "practical_tips": ["편한 신발 착용 필수", "입장료 현금/카드 결제 가능", "가이드 투어 추천"],
       "weather_tips": "겨울철 방문 시 따뜻한 옷차림 필수, 눈 온 후 방문하면 더욱 아름다운 풍경 감상 가능",
       "alternative_places": [
         {
           "name": "창덕궁",
           "reason": "유네스코 세계문화유산으로 자연과 조화로운 건축미",
           "distance": "1.5km"
         }
       ]
     }
   },
   "context": {
     "user_profile_hash": "' || encode(sha256('{"age":28,"preferences":["SIGHTSEEING","CULTURE"],"health":"EXCELLENT"}'::bytea), 'hex') || '",
     "generation_context": {
       "season": "winter",
       "group_type": "couple",
       "activity_level": "moderate"
     },
     "ai_model": "gpt-4o"
   }
 }')::jsonb),
('LOC-002', encode(sha256('{"age":25,"preferences":["NATURE","SPORTS"],"health":"EXCELLENT"}'::bytea), 'hex'),
 ('{
   "place_id": "LOC-002",
   "recommendations": {
     "reasons": [
       "부산 대표 해수욕장으로 자연 경관이 뛰어남",
       "다양한 수상 스포츠 활동 가능",
       "주변 먹거리와 볼거리가 풍부함"
     ],
     "tips": {
       "description": "해운대는 부산의 대표적인 관광지로 아름다운 해변과 다양한 레저 활동을 즐길 수 있습니다.",
       "events": ["해운대 빛축제 (12-1월)", "부산 바다축제 (8월)"],
       "best_visit_time": "일출 시간대 (오전 7-8시) 또는 일몰 시간대 (오후 5-6시)",
       "estimated_duration": "3-4시간",
       "photo_spots": ["해운대 해변", "동백섬", "APEC 누리마루"],
       "practical_tips": ["겨울철에도 산책로 이용 가능", "주차는 유료", "주변 카페에서 바다 전망 감상"],
       "weather_tips": "겨울철 바닷바람이 차가우니 방풍 옷차림 필수",
       "alternative_places": [
         {
           "name": "광안리 해수욕장",
           "reason": "광안대교 야경이 아름다운 또 다른 명소",
           "distance": "3.2km"
         }
       ]
     }
   },
   "context": {
     "user_profile_hash": "' || encode(sha256('{"age":25,"preferences":["NATURE","SPORTS"],"health":"EXCELLENT"}'::bytea), 'hex') || '",
     "generation_context": {
       "season": "winter",
       "group_type": "solo",
       "activity_level": "high"
     },
     "ai_model": "gpt-4o"
   }
 }')::jsonb);

-- 진행 중인 작업의 상태 업데이트
UPDATE ai_schema.ai_jobs
SET result = '{
  "generated_places": 8,
  "processed_preferences": ["NATURE", "SPORTS"],
  "current_city": "부산",
  "estimated_completion": "2024-12-01T11:30:00Z"
}'
WHERE status = 'PROCESSING';

